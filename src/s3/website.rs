//! Bucket website configuration: Put/Get/DeleteBucketWebsite, and the conversion between the
//! s3s DTOs and the stored model (`crate::model::website`, which also validates it and resolves
//! website requests; `http/website.rs` serves them).

use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result};

use super::errors;
use super::Strata;
use crate::model::website::{self as model, parse_status, Invalid, InvalidCode, WebsiteConfig};

fn to_s3_error(e: Invalid) -> S3Error {
    match e.code {
        InvalidCode::MalformedXml => errors::malformed_xml_400(e.message),
        InvalidCode::InvalidArgument => errors::invalid_argument_400(e.message),
    }
}

/// The request's configuration in our model, validated (`max_rules`: the routing-rule bound).
fn from_dto(c: &WebsiteConfiguration, max_rules: usize) -> Result<WebsiteConfig, Invalid> {
    let mut rules = Vec::new();
    for r in c.routing_rules.iter().flatten() {
        let condition = match &r.condition {
            Some(cond) => Some(model::Condition {
                key_prefix_equals: cond.key_prefix_equals.clone(),
                http_error_code_returned_equals: cond
                    .http_error_code_returned_equals
                    .as_deref()
                    .map(|t| parse_status(t, "HttpErrorCodeReturnedEquals", 400..=599))
                    .transpose()?,
            }),
            None => None,
        };
        let d = &r.redirect;
        rules.push(model::RoutingRule {
            condition,
            redirect: model::Redirect {
                protocol: d.protocol.as_ref().map(|p| p.as_str().to_string()),
                host_name: d.host_name.clone(),
                replace_key_prefix_with: d.replace_key_prefix_with.clone(),
                replace_key_with: d.replace_key_with.clone(),
                // 300 Multiple Choices is no redirect a browser follows; S3 refuses it too.
                http_redirect_code: d
                    .http_redirect_code
                    .as_deref()
                    .map(|t| parse_status(t, "HTTP redirect code", 301..=399))
                    .transpose()?,
            },
        });
    }
    let config = WebsiteConfig {
        index_suffix: c.index_document.as_ref().map(|i| i.suffix.clone()),
        error_key: c.error_document.as_ref().map(|e| e.key.clone()),
        redirect_all: c.redirect_all_requests_to.as_ref().map(|a| model::RedirectAll {
            host_name: a.host_name.clone(),
            protocol: a.protocol.as_ref().map(|p| p.as_str().to_string()),
        }),
        rules,
    };
    config.validate(max_rules)?;
    Ok(config)
}

fn to_dto(c: &WebsiteConfig) -> GetBucketWebsiteOutput {
    let rules: Vec<RoutingRule> = c
        .rules
        .iter()
        .map(|r| RoutingRule {
            condition: r.condition.as_ref().map(|cond| Condition {
                key_prefix_equals: cond.key_prefix_equals.clone(),
                http_error_code_returned_equals: cond.http_error_code_returned_equals.map(|c| c.to_string()),
            }),
            redirect: Redirect {
                host_name: r.redirect.host_name.clone(),
                http_redirect_code: r.redirect.http_redirect_code.map(|c| c.to_string()),
                protocol: r.redirect.protocol.clone().map(Protocol::from),
                replace_key_prefix_with: r.redirect.replace_key_prefix_with.clone(),
                replace_key_with: r.redirect.replace_key_with.clone(),
            },
        })
        .collect();
    GetBucketWebsiteOutput {
        error_document: c.error_key.clone().map(|key| ErrorDocument { key }),
        index_document: c.index_suffix.clone().map(|suffix| IndexDocument { suffix }),
        redirect_all_requests_to: c.redirect_all.as_ref().map(|a| RedirectAllRequestsTo {
            host_name: a.host_name.clone(),
            protocol: a.protocol.clone().map(Protocol::from),
        }),
        routing_rules: (!rules.is_empty()).then_some(rules),
    }
}

pub async fn put(s: &Strata, req: S3Request<PutBucketWebsiteInput>) -> S3Result<S3Response<PutBucketWebsiteOutput>> {
    let input = req.input;
    let config = from_dto(&input.website_configuration, s.website_max_routing_rules).map_err(to_s3_error)?;
    s.update_bucket(&input.bucket, |b| {
        b.website = Some(config.clone());
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutBucketWebsiteOutput::default()))
}

pub async fn get(s: &Strata, req: S3Request<GetBucketWebsiteInput>) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
    let bucket = s.bucket(&req.input.bucket)?;
    match bucket.website {
        Some(config) => Ok(S3Response::new(to_dto(&config))),
        None => Err(errors::no_such_website_configuration()),
    }
}

pub async fn delete(
    s: &Strata,
    req: S3Request<DeleteBucketWebsiteInput>,
) -> S3Result<S3Response<DeleteBucketWebsiteOutput>> {
    s.update_bucket(&req.input.bucket, |b| {
        b.website = None;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(DeleteBucketWebsiteOutput::default()))
}
