{#-
    One row per cluster, noise (-1) included: its labels and who wrote them, as decided by
    int_clusters_named, with the audit trail joined in: the prompt, the cached reply and
    the representatives the prompt shows.
-#}
with

named as (

    select * from {{ ref('int_clusters_named') }}

),

keywords as (

    select * from {{ ref('int_cluster_keywords') }}

),

prompts as (

    select * from {{ ref('int_cluster_prompts') }}

),

replies as (

    select * from {{ ref('int_llm_replies') }}

),

final as (

    select
        named.cluster_label,
        named.summary_labels,
        array_to_string(named.summary_labels, '; ') as summary_label,
        named.model_name,
        named.label_source,
        named.label_status,
        named.label_error,
        keywords.top_keywords,
        -- the representatives the prompt shows (it may drop the last ones to fit, and a
        -- prompt kept from an earlier build shows the representatives of then)
        coalesce(prompts.representative_ids, []) as representative_ids,
        named.first_labels,
        named.collision_group,
        named.distinct_by,
        named.added_terms,
        named.relabel_status,
        named.relabel_request_hash,
        named.request_hash,
        prompts.user_prompt,
        replies.raw_reply,
        replies.attempts,
        replies.latency_ms
    from named
    inner join keywords on named.cluster_label = keywords.cluster_label
    left join prompts on named.cluster_label = prompts.cluster_label
    left join replies on named.request_hash = replies.request_hash

)

select * from final
