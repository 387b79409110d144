{#-
    A cluster id given afresh by a fit (is_new_id) never names a cluster of an earlier fit:
    ids are never reused for a different cluster (int_texts_clustered keeps a high-water mark).
-#}
select later.lineage_key
from {{ ref('fct_cluster_lineage') }} as later
inner join {{ ref('fct_cluster_lineage') }} as earlier
    on
        later.recorded_at > earlier.recorded_at
        and later.new_cluster in (earlier.old_cluster, earlier.new_cluster)
where later.is_new_id
