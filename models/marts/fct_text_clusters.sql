{#-
    One row per input text: its projection, cluster and cluster label. Texts that were not
    embedded (no words) and noise points carry cluster -1 and var default_label.
-#}
with

texts as (

    select * from {{ ref('stg_texts') }}

),

projected as (

    select * from {{ ref('int_texts_projected') }}

),

clustered as (

    select * from {{ ref('int_texts_clustered') }}

),

labels as (

    select * from {{ ref('int_clusters_labelled') }}

),

assigned as (

    select
        texts.text_id,
        texts.text,
        projected.projection,
        coalesce(clustered.cluster_label, -1) as cluster_label
    from texts
    left join projected on texts.text_id = projected.text_id
    left join clustered on texts.text_id = clustered.text_id

),

final as (

    select
        assigned.text_id,
        assigned.text,
        assigned.projection,
        assigned.cluster_label,
        labels.summary_label,
        labels.summary_labels,
        labels.model_name
    from assigned
    inner join labels on assigned.cluster_label = labels.cluster_label

)

select * from final
