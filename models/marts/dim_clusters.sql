{#-
    One row per cluster, noise (-1) included: size, share of all texts, centre in the
    projection, labels, who wrote them and how they were made distinct, top keywords and
    the representatives shown to the labeller. With the overrides seed applied: a pinned
    label (model_name `human`), merged_into for a cluster merged into another (it then has
    no texts), is_excluded.
-#}
with

text_clusters as (

    select * from {{ ref('fct_text_clusters') }}

),

labels as (

    select * from {{ ref('int_clusters_labelled') }}

),

overridden as (

    select * from {{ ref('int_topics_overridden') }}
    where level = 0

),

sizes as (

    select
        cluster_label,
        count(*) as n_texts,
        count(*) / sum(count(*)) over () as share,
        [avg(projection[1]), avg(projection[2])]::float[2] as centre
    from text_clusters
    group by cluster_label

),

final as (

    select
        labels.cluster_label,
        labels.cluster_label = -1 as is_noise,
        coalesce(sizes.n_texts, 0) as n_texts,
        coalesce(sizes.share, 0.0) as share,
        sizes.centre,
        overridden.summary_label,
        overridden.summary_labels,
        overridden.model_name,
        labels.label_status,
        labels.label_error,
        labels.distinct_by,
        labels.top_keywords,
        labels.representative_ids,
        overridden.merged_into,
        overridden.is_excluded
    from labels
    inner join overridden on labels.cluster_label = overridden.topic_id
    left join sizes on labels.cluster_label = sizes.cluster_label

)

select * from final
