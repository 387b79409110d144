{{ config(severity='warn', store_failures=true) }}
-- The rows of seeds/cluster_overrides.csv that no longer match this build (their cluster or
-- topic ended in a refit, their text left the input, their cluster was merged away): they
-- are not applied. Warns, never drops them silently; `stale_reason` says what to change.
select
    override_id,
    action,
    cluster_id,
    text_id,
    stale_reason
from {{ ref('int_cluster_overrides') }}
where status = 'stale'
