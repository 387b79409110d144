{#-
    One row per cluster, noise (-1) included: the labels and who wrote them.
    - noise: var default_label, n times;
    - no LLM configured (prompts.labeller = 'c-tf-idf'): the cluster's keyword labels;
    - LLM: the cached reply when it is ok, else var default_label with the reason.
    Keyword and LLM labels come through int_clusters_disambiguated, which makes colliding
    labels distinct (LLM relabel, distinguishing keywords, or the cluster number).
-#}
with

keywords as (

    select * from {{ ref('int_cluster_keywords') }}

),

prompts as (

    select * from {{ ref('int_cluster_prompts') }}

),

responses as (

    select * from {{ ref('int_llm_responses') }}

),

disambiguated as (

    select * from {{ ref('int_clusters_disambiguated') }}

),

representatives as (

    select * from {{ ref('int_cluster_representatives') }}

),

representative_ids as (

    select
        cluster_label,
        list(text_id order by representative_rank, text_id) as representative_ids
    from representatives
    group by cluster_label

),

joined as (

    select
        keywords.cluster_label,
        keywords.top_keywords,
        keywords.keyword_labels,
        prompts.labeller,
        prompts.request_hash,
        prompts.user_prompt,
        responses.labels as llm_labels,
        responses.model_name as llm_model_name,
        responses.status as llm_status,
        responses.error as llm_error,
        responses.attempts,
        responses.latency_ms,
        responses.raw_reply,
        disambiguated.summary_labels as distinct_labels,
        disambiguated.first_labels,
        disambiguated.collision_group,
        disambiguated.distinct_by,
        disambiguated.added_terms,
        disambiguated.relabel_status,
        disambiguated.relabel_request_hash,
        -- the representatives the prompt shows (it may drop the last ones to fit)
        coalesce(
            representative_ids.representative_ids[1:prompts.n_examples], []
        ) as representative_ids,
        case
            when keywords.cluster_label = -1 then 'noise'
            when prompts.labeller = 'c-tf-idf' then 'keywords'
            when responses.status = 'ok' then 'llm'
            else 'default'
        end as label_source
    from keywords
    left join prompts on keywords.cluster_label = prompts.cluster_label
    left join responses on prompts.request_hash = responses.request_hash
    left join disambiguated on keywords.cluster_label = disambiguated.cluster_label
    left join representative_ids
        on keywords.cluster_label = representative_ids.cluster_label

),

final as (

    select
        cluster_label,
        case label_source
            when 'keywords' then coalesce(distinct_labels, keyword_labels)
            when 'llm' then coalesce(distinct_labels, llm_labels)
            else {{ text_clustering_default_labels() }}
        end as summary_labels,
        array_to_string(summary_labels, '; ') as summary_label,
        case label_source
            when 'keywords' then 'c-tf-idf'
            when 'llm' then llm_model_name
            else 'default_label'
        end as model_name,
        case
            when label_source = 'noise' then 'noise'
            when label_source in ('keywords', 'llm') then 'ok'
            else coalesce(llm_status, 'not_asked')
        end as label_status,
        case
            when label_source = 'default' then coalesce(
                llm_error, 'not asked: dry run (var llm_dry_run) or no reply recorded'
            )
        end as label_error,
        top_keywords,
        representative_ids,
        first_labels,
        collision_group,
        distinct_by,
        added_terms,
        relabel_status,
        relabel_request_hash,
        request_hash,
        user_prompt,
        raw_reply,
        attempts,
        latency_ms
    from joined

)

select * from final
