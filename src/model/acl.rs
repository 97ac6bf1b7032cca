//! S3 access control lists (ACLs) for buckets and objects: the stored model, the three ways a
//! client can set one (a canned ACL name, `x-amz-grant-*` headers, an `AccessControlPolicy` XML
//! body), the `GetBucketAcl`/`GetObjectAcl` output form, and the permission check itself.
//!
//! Principals in Strata are access keys, so the *canonical user ID* of a principal is its access
//! key id: `<ID>AKIA…</ID>` in a grant names the key `AKIA…`, and the owner of a bucket or object
//! is the access key that created it. There is no e-mail directory, so grants by e-mail address
//! are refused with `UnresolvableGrantByEmailAddress`.
//!
//! An [`Acl`] is stored in the metadata store as MessagePack, which is why the model is made of
//! plain serde enums and structs and never of s3s DTO types.

use http::HeaderMap;
use s3s::dto;
use s3s::S3Result;
use serde::{Deserialize, Serialize};

use crate::util::errors;

/// Most grants one ACL may hold: S3's documented limit ("An ACL can have up to 100 grants").
pub const MAX_GRANTS: usize = 100;

/// The `AllUsers` group: everyone, signed or anonymous.
pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The `AuthenticatedUsers` group: any signed request, whichever key signed it.
pub const AUTHENTICATED_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// The `LogDelivery` group: S3's server-access-log writer. Strata has no such principal, so a
/// grant to it is stored and reported but never matches a caller.
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// The `x-amz-grant-*` request headers, each with the permission it grants, in the order grants
/// are stored (strongest first, like the canned ACLs).
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-full-control", Permission::FullControl),
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
];

/// S3's wording for a policy document that is not a valid ACL.
const MALFORMED_ACL_MESSAGE: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

/// An access control list: who owns the resource and what each grantee may do with it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    /// Canonical user ID (access key id) of the resource owner.
    pub owner: String,
    /// Grants in the order they were given; the owner has only what these say, apart from the
    /// implicit right to read and write the ACL itself (see [`Acl::allows`]).
    pub grants: Vec<Grant>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Grantee {
    /// A canonical user, i.e. an access key id.
    User(String),
    AllUsers,
    AuthenticatedUsers,
    LogDelivery,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

impl Permission {
    /// The wire name, as in `<Permission>READ_ACP</Permission>`.
    pub fn as_s3_str(self) -> &'static str {
        match self {
            Permission::FullControl => dto::Permission::FULL_CONTROL,
            Permission::Read => dto::Permission::READ,
            Permission::Write => dto::Permission::WRITE,
            Permission::ReadAcp => dto::Permission::READ_ACP,
            Permission::WriteAcp => dto::Permission::WRITE_ACP,
        }
    }

    /// Parses a wire name; `None` for anything S3's schema would reject.
    pub fn from_s3_str(name: &str) -> Option<Permission> {
        match name {
            dto::Permission::FULL_CONTROL => Some(Permission::FullControl),
            dto::Permission::READ => Some(Permission::Read),
            dto::Permission::WRITE => Some(Permission::Write),
            dto::Permission::READ_ACP => Some(Permission::ReadAcp),
            dto::Permission::WRITE_ACP => Some(Permission::WriteAcp),
            _ => None,
        }
    }

    /// Does holding `self` give `wanted`? Only FULL_CONTROL covers more than itself.
    pub fn covers(self, wanted: Permission) -> bool {
        self == Permission::FullControl || self == wanted
    }
}

impl Grantee {
    /// The group a grantee URI names, if it is one S3 knows.
    pub fn from_group_uri(uri: &str) -> Option<Grantee> {
        match uri {
            ALL_USERS_URI => Some(Grantee::AllUsers),
            AUTHENTICATED_USERS_URI => Some(Grantee::AuthenticatedUsers),
            LOG_DELIVERY_URI => Some(Grantee::LogDelivery),
            _ => None,
        }
    }

    /// The group URI of a group grantee; `None` for a user.
    pub fn group_uri(&self) -> Option<&'static str> {
        match self {
            Grantee::User(_) => None,
            Grantee::AllUsers => Some(ALL_USERS_URI),
            Grantee::AuthenticatedUsers => Some(AUTHENTICATED_USERS_URI),
            Grantee::LogDelivery => Some(LOG_DELIVERY_URI),
        }
    }

    /// Is this one of the two groups S3 counts as "public" (and `IgnorePublicAcls` ignores)?
    pub fn is_public_group(&self) -> bool {
        matches!(self, Grantee::AllUsers | Grantee::AuthenticatedUsers)
    }

    /// Does this grantee include `caller` (`None` = anonymous)?
    fn includes(&self, caller: Option<&str>) -> bool {
        match self {
            Grantee::User(id) => caller == Some(id.as_str()),
            Grantee::AllUsers => true,
            Grantee::AuthenticatedUsers => caller.is_some(),
            // No request is ever made as S3's log-delivery service.
            Grantee::LogDelivery => false,
        }
    }
}

impl Grant {
    fn new(grantee: Grantee, permission: Permission) -> Grant {
        Grant { grantee, permission }
    }
}

impl Acl {
    /// The default ACL: the owner has FULL_CONTROL and nobody else has anything.
    pub fn private(owner: &str) -> Acl {
        Acl {
            owner: owner.to_owned(),
            grants: vec![Grant::new(Grantee::User(owner.to_owned()), Permission::FullControl)],
        }
    }

    /// Builds one of S3's canned ACLs (`x-amz-acl`), as in S3's "Canned ACL" table.
    ///
    /// `bucket_owner` only matters for `bucket-owner-read` / `bucket-owner-full-control`, which
    /// are meant for objects; on a bucket (`owner == bucket_owner`) they amount to `private`,
    /// which is what S3's "ignores it" means for buckets.
    pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> S3Result<Acl> {
        let mut acl = Acl::private(owner);
        let extra: &[(Grantee, Permission)] = match name {
            // aws-exec-read grants READ to Amazon EC2 for AMI bundles; there is no such
            // principal here, so nothing is added to the owner's FULL_CONTROL.
            "private" | "aws-exec-read" => &[],
            "public-read" => &[(Grantee::AllUsers, Permission::Read)],
            "public-read-write" => &[
                (Grantee::AllUsers, Permission::Read),
                (Grantee::AllUsers, Permission::Write),
            ],
            "authenticated-read" => &[(Grantee::AuthenticatedUsers, Permission::Read)],
            "log-delivery-write" => &[
                (Grantee::LogDelivery, Permission::Write),
                (Grantee::LogDelivery, Permission::ReadAcp),
            ],
            "bucket-owner-read" | "bucket-owner-full-control" => {
                if owner != bucket_owner {
                    let permission = if name == "bucket-owner-read" {
                        Permission::Read
                    } else {
                        Permission::FullControl
                    };
                    acl.grants
                        .push(Grant::new(Grantee::User(bucket_owner.to_owned()), permission));
                }
                &[]
            }
            _ => return Err(errors::invalid_argument(format!("Invalid canned ACL: {name}"))),
        };
        acl.grants.extend(
            extra
                .iter()
                .map(|(grantee, permission)| Grant::new(grantee.clone(), *permission)),
        );
        Ok(acl)
    }

    /// Parses the `x-amz-grant-*` headers. `Ok(None)` when none is present.
    ///
    /// Each value is a comma-separated list of `type="value"` items, type being `id`, `uri` or
    /// `emailAddress`; quotes are optional and spaces around items are ignored. With explicit
    /// grant headers S3 stores exactly the grants given (the owner gets no implicit
    /// FULL_CONTROL), so this does too; only exact duplicates are dropped. Whether an `id` names
    /// a real key is not checked here: see [`Acl::check_users_exist`].
    pub fn from_grant_headers(headers: &HeaderMap, owner: &str) -> S3Result<Option<Acl>> {
        let mut values = Vec::new();
        for (name, permission) in GRANT_HEADERS {
            for value in headers.get_all(name) {
                let text = value
                    .to_str()
                    .map_err(|_| errors::invalid_argument(format!("Invalid value in {name}")))?;
                values.push((permission, text));
            }
        }
        Acl::from_grant_values(values, owner)
    }

    /// [`Acl::from_grant_headers`] for values already taken out of the request, e.g. s3s's
    /// `input.grant_read`: pairs of the permission a header grants and the header's value.
    pub fn from_grant_values<'a>(
        values: impl IntoIterator<Item = (Permission, &'a str)>,
        owner: &str,
    ) -> S3Result<Option<Acl>> {
        let mut grants: Vec<Grant> = Vec::new();
        let mut any_header = false;
        for (permission, value) in values {
            any_header = true;
            for grantee in parse_grantee_list(value)? {
                let grant = Grant::new(grantee, permission);
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
                if grants.len() > MAX_GRANTS {
                    return Err(errors::invalid_argument(format!(
                        "Too many grants: at most {MAX_GRANTS} are allowed"
                    )));
                }
            }
        }
        if !any_header {
            return Ok(None);
        }
        Ok(Some(Acl {
            owner: owner.to_owned(),
            grants,
        }))
    }

    /// The ACL a write request asks for: from `x-amz-acl` (`canned`) or the `x-amz-grant-*`
    /// headers, `Ok(None)` when it names neither. S3 refuses a request that uses both.
    pub fn from_request(
        canned: Option<&str>,
        headers: &HeaderMap,
        owner: &str,
        bucket_owner: &str,
    ) -> S3Result<Option<Acl>> {
        let granted = Acl::from_grant_headers(headers, owner)?;
        match (canned, granted) {
            (Some(_), Some(_)) => Err(errors::invalid_request(
                "Specifying both Canned ACLs and Header Grants is not allowed",
            )),
            (Some(name), None) => Acl::canned(name, owner, bucket_owner).map(Some),
            (None, granted) => Ok(granted),
        }
    }

    /// Converts a `PutBucketAcl`/`PutObjectAcl` XML body.
    ///
    /// The `<Owner>`, when present, must be the current owner: S3 answers `AccessDenied` to an
    /// attempt to change it. `user_exists` tells whether an access key id is known; the owner is
    /// taken to exist without asking.
    pub fn from_dto(
        policy: &dto::AccessControlPolicy,
        owner: &str,
        user_exists: impl Fn(&str) -> bool,
    ) -> S3Result<Acl> {
        if let Some(body_owner) = policy.owner.as_ref().and_then(|o| o.id.as_deref()) {
            if body_owner.trim() != owner {
                return Err(errors::access_denied());
            }
        }
        let dto_grants = policy.grants.as_deref().unwrap_or_default();
        if dto_grants.len() > MAX_GRANTS {
            return Err(errors::malformed_acl(format!(
                "The request contains {} grants; at most {MAX_GRANTS} are allowed",
                dto_grants.len()
            )));
        }
        let mut grants = Vec::with_capacity(dto_grants.len());
        for dto_grant in dto_grants {
            let (Some(dto_grantee), Some(dto_permission)) = (&dto_grant.grantee, &dto_grant.permission) else {
                return Err(errors::malformed_acl(MALFORMED_ACL_MESSAGE));
            };
            let permission = Permission::from_s3_str(dto_permission.as_str().trim())
                .ok_or_else(|| errors::malformed_acl(MALFORMED_ACL_MESSAGE))?;
            let grantee = grantee_from_dto(dto_grantee, owner, &user_exists)?;
            let grant = Grant::new(grantee, permission);
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        Ok(Acl {
            owner: owner.to_owned(),
            grants,
        })
    }

    /// The owner and grant list for `GetBucketAcl`/`GetObjectAcl`. `display_name` gives a
    /// user's display name, if there is one to show.
    pub fn to_dto(&self, display_name: impl Fn(&str) -> Option<String>) -> (dto::Owner, Vec<dto::Grant>) {
        let owner = dto::Owner {
            display_name: display_name(&self.owner),
            id: Some(self.owner.clone()),
        };
        let grants = self
            .grants
            .iter()
            .map(|grant| {
                let grantee = match &grant.grantee {
                    Grantee::User(id) => dto::Grantee {
                        display_name: display_name(id),
                        email_address: None,
                        id: Some(id.clone()),
                        type_: dto::Type::from_static(dto::Type::CANONICAL_USER),
                        uri: None,
                    },
                    group => dto::Grantee {
                        display_name: None,
                        email_address: None,
                        id: None,
                        type_: dto::Type::from_static(dto::Type::GROUP),
                        uri: group.group_uri().map(str::to_owned),
                    },
                };
                dto::Grant {
                    grantee: Some(grantee),
                    permission: Some(dto::Permission::from_static(grant.permission.as_s3_str())),
                }
            })
            .collect();
        (owner, grants)
    }

    /// S3's definition of a public ACL: anything granted to `AllUsers` or `AuthenticatedUsers`.
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|grant| grant.grantee.is_public_group())
    }

    /// May `caller` (`None` = anonymous) do what `wanted` permits?
    ///
    /// `AllUsers` matches everyone, anonymous included; `AuthenticatedUsers` any signed caller;
    /// `User(id)` that key only; FULL_CONTROL implies every permission. With
    /// `ignore_public_grants` (S3's `IgnorePublicAcls`) the two public groups are skipped. The
    /// owner may always read and write the ACL itself, whatever the grants say, because S3
    /// never lets an owner lock itself out of its own ACL.
    pub fn allows(&self, caller: Option<&str>, wanted: Permission, ignore_public_grants: bool) -> bool {
        let is_owner = caller == Some(self.owner.as_str());
        if is_owner && matches!(wanted, Permission::ReadAcp | Permission::WriteAcp) {
            return true;
        }
        self.grants.iter().any(|grant| {
            !(ignore_public_grants && grant.grantee.is_public_group())
                && grant.permission.covers(wanted)
                && grant.grantee.includes(caller)
        })
    }

    /// Fails with `InvalidArgument` "Invalid id" if a user grant names an unknown access key
    /// (the owner counts as known). For ACLs built from grant headers, which cannot check.
    pub fn check_users_exist(&self, user_exists: impl Fn(&str) -> bool) -> S3Result<()> {
        for grant in &self.grants {
            if let Grantee::User(id) = &grant.grantee {
                if *id != self.owner && !user_exists(id) {
                    return Err(errors::invalid_argument("Invalid id"));
                }
            }
        }
        Ok(())
    }
}

/// Which ACL permission S3 checks for an IAM-style action, if ACLs can grant it at all.
///
/// | ACL of    | permission | actions                                                             |
/// |-----------|------------|---------------------------------------------------------------------|
/// | object    | READ       | s3:GetObject, s3:GetObjectVersion                                   |
/// | object    | READ_ACP   | s3:GetObjectAcl, s3:GetObjectVersionAcl                             |
/// | object    | WRITE_ACP  | s3:PutObjectAcl, s3:PutObjectVersionAcl                             |
/// | bucket    | READ       | s3:ListBucket, s3:ListBucketVersions, s3:ListBucketMultipartUploads |
/// | bucket    | WRITE      | s3:PutObject, s3:DeleteObject, s3:DeleteObjectVersion,              |
/// |           |            | s3:AbortMultipartUpload                                             |
/// | bucket    | READ_ACP   | s3:GetBucketAcl                                                     |
/// | bucket    | WRITE_ACP  | s3:PutBucketAcl                                                     |
///
/// Writing or deleting an object is authorised by the *bucket's* WRITE (object ACLs have no
/// meaningful WRITE), so those actions map only with `on_object == false`. Everything else
/// (bucket configuration, policies, deleting buckets, ...) is never granted by an ACL: `None`.
/// Action names are matched exactly, as Strata spells them.
pub fn permission_for_action(action: &str, on_object: bool) -> Option<Permission> {
    if on_object {
        match action {
            "s3:GetObject" | "s3:GetObjectVersion" => Some(Permission::Read),
            "s3:GetObjectAcl" | "s3:GetObjectVersionAcl" => Some(Permission::ReadAcp),
            "s3:PutObjectAcl" | "s3:PutObjectVersionAcl" => Some(Permission::WriteAcp),
            _ => None,
        }
    } else {
        match action {
            "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads" => Some(Permission::Read),
            "s3:PutObject" | "s3:DeleteObject" | "s3:DeleteObjectVersion" | "s3:AbortMultipartUpload" => {
                Some(Permission::Write)
            }
            "s3:GetBucketAcl" => Some(Permission::ReadAcp),
            "s3:PutBucketAcl" => Some(Permission::WriteAcp),
            _ => None,
        }
    }
}

fn grantee_from_dto(grantee: &dto::Grantee, owner: &str, user_exists: &impl Fn(&str) -> bool) -> S3Result<Grantee> {
    match grantee.type_.as_str() {
        dto::Type::CANONICAL_USER => {
            let id = grantee
                .id
                .as_deref()
                .map(str::trim)
                .ok_or_else(|| errors::malformed_acl(MALFORMED_ACL_MESSAGE))?;
            if id.is_empty() || (id != owner && !user_exists(id)) {
                return Err(errors::invalid_argument("Invalid id"));
            }
            Ok(Grantee::User(id.to_owned()))
        }
        dto::Type::GROUP => {
            let uri = grantee
                .uri
                .as_deref()
                .map(str::trim)
                .ok_or_else(|| errors::malformed_acl(MALFORMED_ACL_MESSAGE))?;
            Grantee::from_group_uri(uri).ok_or_else(|| errors::invalid_argument("Invalid group uri"))
        }
        dto::Type::AMAZON_CUSTOMER_BY_EMAIL => Err(unresolvable_email()),
        _ => Err(errors::malformed_acl(MALFORMED_ACL_MESSAGE)),
    }
}

fn unresolvable_email() -> s3s::S3Error {
    errors::unresolvable_grant_by_email_address()
}

fn unrecognised_grant_format() -> s3s::S3Error {
    errors::invalid_argument("Argument format not recognized")
}

/// Parses one `x-amz-grant-*` value: `type="value"` items separated by commas. Quotes are
/// optional (but a quoted value may then hold a comma); empty items between commas are skipped;
/// a value with no item at all is refused, since it grants nothing yet looks like it meant to.
fn parse_grantee_list(header_value: &str) -> S3Result<Vec<Grantee>> {
    let mut grantees = Vec::new();
    let mut rest = header_value;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
            continue;
        }
        let (kind, after_equals) = rest.split_once('=').ok_or_else(unrecognised_grant_format)?;
        let kind = kind.trim();
        if kind.contains([',', '"']) {
            return Err(unrecognised_grant_format());
        }
        let after_equals = after_equals.trim_start();
        let (value, after_value) = match after_equals.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').ok_or_else(unrecognised_grant_format)?,
            None => {
                let end = after_equals.find(',').unwrap_or(after_equals.len());
                after_equals.split_at(end)
            }
        };
        let after_value = after_value.trim_start();
        if !(after_value.is_empty() || after_value.starts_with(',')) {
            return Err(unrecognised_grant_format());
        }
        rest = after_value;
        grantees.push(grantee_from_header_item(kind, value.trim())?);
    }
    if grantees.is_empty() {
        return Err(unrecognised_grant_format());
    }
    Ok(grantees)
}

fn grantee_from_header_item(kind: &str, value: &str) -> S3Result<Grantee> {
    if kind.eq_ignore_ascii_case("id") {
        if value.is_empty() {
            return Err(errors::invalid_argument("Invalid id"));
        }
        Ok(Grantee::User(value.to_owned()))
    } else if kind.eq_ignore_ascii_case("uri") {
        Grantee::from_group_uri(value).ok_or_else(|| errors::invalid_argument("Invalid group uri"))
    } else if kind.eq_ignore_ascii_case("emailAddress") {
        Err(unresolvable_email())
    } else {
        Err(unrecognised_grant_format())
    }
}

/// Fuzz entry: never panics on any input. `data` goes (lossily as UTF-8) to the grant-header
/// parser, and as an `AccessControlPolicy` XML body, through s3s's own XML deserializer, to
/// [`Acl::from_dto`]; whatever is accepted must survive `to_dto` → `from_dto` unchanged.
/// Returns a fingerprint of how far the input got, for the fuzzer's pool.
pub fn fuzz(data: &[u8]) -> u8 {
    let o = fuzz_outcome(data);
    u8::from(o.headers_accepted) | u8::from(o.xml_parsed) << 1 | u8::from(o.policy_accepted) << 2
}

/// What one fuzz input reached, so the loop test can check the mutations exercise both sides.
#[derive(Debug, Default, Clone, Copy)]
struct FuzzOutcome {
    headers_accepted: bool,
    xml_parsed: bool,
    policy_accepted: bool,
}

fn fuzz_outcome(data: &[u8]) -> FuzzOutcome {
    const OWNER: &str = "AKIAOWNER";
    let user_exists = |id: &str| id.starts_with("AKIA");
    let mut outcome = FuzzOutcome::default();

    let text = String::from_utf8_lossy(data);
    if let Ok(Some(acl)) = Acl::from_grant_values([(Permission::Read, text.as_ref())], OWNER) {
        outcome.headers_accepted = true;
        exercise(&acl);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-grant-write-acp", value);
        if let Ok(Some(acl)) = Acl::from_request(None, &headers, OWNER, "AKIABUCKETOWNER") {
            exercise(&acl);
        }
    }

    let mut deserializer = s3s::xml::Deserializer::new(data);
    let parsed = <dto::AccessControlPolicy as s3s::xml::Deserialize>::deserialize(&mut deserializer)
        .and_then(|policy| deserializer.expect_eof().map(|()| policy));
    if let Ok(policy) = parsed {
        outcome.xml_parsed = true;
        if let Ok(acl) = Acl::from_dto(&policy, OWNER, user_exists) {
            outcome.policy_accepted = true;
            exercise(&acl);
            let (owner, grants) = acl.to_dto(|id| Some(format!("name of {id}")));
            let echoed = dto::AccessControlPolicy {
                grants: Some(grants),
                owner: Some(owner),
            };
            // Whatever GetObjectAcl shows must be accepted back by PutObjectAcl unchanged.
            let round_trip = Acl::from_dto(&echoed, OWNER, user_exists);
            assert_eq!(
                round_trip.ok().as_ref(),
                Some(&acl),
                "ACL changed through to_dto/from_dto"
            );
        }
    }
    outcome
}

fn exercise(acl: &Acl) {
    let permissions = [
        Permission::FullControl,
        Permission::Read,
        Permission::Write,
        Permission::ReadAcp,
        Permission::WriteAcp,
    ];
    for caller in [None, Some("AKIAOWNER"), Some("AKIAOTHER")] {
        for wanted in permissions {
            let strict = acl.allows(caller, wanted, true);
            let lenient = acl.allows(caller, wanted, false);
            // Ignoring public grants can only take access away.
            assert!(!strict || lenient, "IgnorePublicAcls granted more access");
        }
    }
    let _ = acl.is_public();
    let _ = acl.check_users_exist(|id| id.len() % 2 == 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::S3ErrorCode;

    const OWNER: &str = "AKIAOWNER";
    const OTHER: &str = "AKIAOTHER";

    fn user(id: &str) -> Grantee {
        Grantee::User(id.to_owned())
    }

    fn known_user(id: &str) -> bool {
        id.starts_with("AKIA")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, http::HeaderValue::from_str(value).expect("test header value"));
        }
        map
    }

    fn code_of<T: std::fmt::Debug>(result: S3Result<T>) -> S3ErrorCode {
        result.expect_err("expected an error").code().clone()
    }

    fn parse_policy_xml(xml: &str) -> dto::AccessControlPolicy {
        let mut d = s3s::xml::Deserializer::new(xml.as_bytes());
        let policy = <dto::AccessControlPolicy as s3s::xml::Deserialize>::deserialize(&mut d).expect("valid XML");
        d.expect_eof().expect("nothing after the document");
        policy
    }

    fn dto_user_grant(id: &str, permission: &'static str) -> dto::Grant {
        dto::Grant {
            grantee: Some(dto::Grantee {
                display_name: None,
                email_address: None,
                id: Some(id.to_owned()),
                type_: dto::Type::from_static(dto::Type::CANONICAL_USER),
                uri: None,
            }),
            permission: Some(dto::Permission::from_static(permission)),
        }
    }

    fn dto_group_grant(uri: &str, permission: &'static str) -> dto::Grant {
        dto::Grant {
            grantee: Some(dto::Grantee {
                display_name: None,
                email_address: None,
                id: None,
                type_: dto::Type::from_static(dto::Type::GROUP),
                uri: Some(uri.to_owned()),
            }),
            permission: Some(dto::Permission::from_static(permission)),
        }
    }

    fn policy(owner: Option<&str>, grants: Vec<dto::Grant>) -> dto::AccessControlPolicy {
        dto::AccessControlPolicy {
            grants: Some(grants),
            owner: owner.map(|id| dto::Owner {
                display_name: None,
                id: Some(id.to_owned()),
            }),
        }
    }

    #[test]
    fn private_gives_owner_full_control_only() {
        let acl = Acl::private(OWNER);
        assert_eq!(acl.grants, vec![Grant::new(user(OWNER), Permission::FullControl)]);
        assert!(acl.allows(Some(OWNER), Permission::Write, false));
        assert!(!acl.allows(Some(OTHER), Permission::Read, false));
        assert!(!acl.allows(None, Permission::Read, false));
        assert!(!acl.is_public());
    }

    #[test]
    fn canned_acls_match_the_s3_table() {
        let public_read = Acl::canned("public-read", OWNER, OWNER).expect("known");
        assert_eq!(
            public_read.grants,
            vec![
                Grant::new(user(OWNER), Permission::FullControl),
                Grant::new(Grantee::AllUsers, Permission::Read)
            ]
        );
        let public_read_write = Acl::canned("public-read-write", OWNER, OWNER).expect("known");
        assert!(public_read_write.allows(None, Permission::Write, false));
        assert!(!public_read_write.allows(None, Permission::WriteAcp, false));

        let authenticated = Acl::canned("authenticated-read", OWNER, OWNER).expect("known");
        assert!(authenticated.allows(Some(OTHER), Permission::Read, false));
        assert!(!authenticated.allows(None, Permission::Read, false));
        assert!(authenticated.is_public());

        assert_eq!(
            Acl::canned("aws-exec-read", OWNER, OWNER).expect("known"),
            Acl::private(OWNER)
        );
        assert_eq!(
            Acl::canned("private", OWNER, OTHER).expect("known"),
            Acl::private(OWNER)
        );

        let log_delivery = Acl::canned("log-delivery-write", OWNER, OWNER).expect("known");
        assert_eq!(
            log_delivery.grants,
            vec![
                Grant::new(user(OWNER), Permission::FullControl),
                Grant::new(Grantee::LogDelivery, Permission::Write),
                Grant::new(Grantee::LogDelivery, Permission::ReadAcp),
            ]
        );
        assert!(!log_delivery.is_public());
        assert!(!log_delivery.allows(None, Permission::Write, false));
    }

    #[test]
    fn bucket_owner_canned_acls_add_the_bucket_owner_once() {
        let read = Acl::canned("bucket-owner-read", OWNER, OTHER).expect("known");
        assert_eq!(
            read.grants,
            vec![
                Grant::new(user(OWNER), Permission::FullControl),
                Grant::new(user(OTHER), Permission::Read)
            ]
        );
        let full = Acl::canned("bucket-owner-full-control", OWNER, OTHER).expect("known");
        assert!(full.allows(Some(OTHER), Permission::WriteAcp, false));
        // Same owner (or a bucket): no duplicate grant, just private.
        assert_eq!(
            Acl::canned("bucket-owner-full-control", OWNER, OWNER).expect("known"),
            Acl::private(OWNER)
        );
        assert_eq!(
            Acl::canned("bucket-owner-read", OWNER, OWNER).expect("known"),
            Acl::private(OWNER)
        );
    }

    #[test]
    fn unknown_canned_acl_is_invalid_argument() {
        assert_eq!(
            code_of(Acl::canned("public", OWNER, OWNER)),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code_of(Acl::canned("Private", OWNER, OWNER)),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(code_of(Acl::canned("", OWNER, OWNER)), S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn grant_headers_parse_ids_and_groups() {
        let map = headers(&[
            (
                "x-amz-grant-read",
                r#"id="AKIAONE", uri="http://acs.amazonaws.com/groups/global/AllUsers""#,
            ),
            ("x-amz-grant-full-control", "id=AKIATWO"),
            (
                "x-amz-grant-write-acp",
                r#"  uri = "http://acs.amazonaws.com/groups/s3/LogDelivery" ,, "#,
            ),
        ]);
        let acl = Acl::from_grant_headers(&map, OWNER).expect("valid").expect("present");
        assert_eq!(acl.owner, OWNER);
        assert_eq!(
            acl.grants,
            vec![
                Grant::new(user("AKIATWO"), Permission::FullControl),
                Grant::new(user("AKIAONE"), Permission::Read),
                Grant::new(Grantee::AllUsers, Permission::Read),
                Grant::new(Grantee::LogDelivery, Permission::WriteAcp),
            ]
        );
        // Exactly the grants given: the owner gets no implicit FULL_CONTROL...
        assert!(!acl.allows(Some(OWNER), Permission::Write, false));
        assert!(!acl.allows(Some(OWNER), Permission::Read, true));
        // ...but may still read and write the ACL.
        assert!(acl.allows(Some(OWNER), Permission::WriteAcp, false));
    }

    #[test]
    fn grant_headers_absent_is_none() {
        let map = headers(&[("x-amz-acl", "private"), ("content-type", "text/plain")]);
        assert_eq!(Acl::from_grant_headers(&map, OWNER).expect("no error"), None);
    }

    #[test]
    fn repeated_grant_headers_are_all_read_and_duplicates_dropped() {
        let map = headers(&[
            ("x-amz-grant-read", "id=AKIAONE"),
            ("x-amz-grant-read", r#"id="AKIATWO", id="AKIAONE""#),
        ]);
        let acl = Acl::from_grant_headers(&map, OWNER).expect("valid").expect("present");
        assert_eq!(
            acl.grants,
            vec![
                Grant::new(user("AKIAONE"), Permission::Read),
                Grant::new(user("AKIATWO"), Permission::Read)
            ]
        );
    }

    #[test]
    fn grant_header_quoted_value_may_hold_a_comma() {
        let acl = Acl::from_grant_values([(Permission::Read, r#"id="a,b""#)], OWNER)
            .expect("valid")
            .expect("present");
        assert_eq!(acl.grants, vec![Grant::new(user("a,b"), Permission::Read)]);
    }

    #[test]
    fn bad_grant_headers_are_refused() {
        let cases: &[(&str, S3ErrorCode)] = &[
            (
                r#"emailAddress="someone@example.com""#,
                S3ErrorCode::UnresolvableGrantByEmailAddress,
            ),
            (
                r#"uri="http://acs.amazonaws.com/groups/global/Everyone""#,
                S3ErrorCode::InvalidArgument,
            ),
            (
                r#"uri="https://acs.amazonaws.com/groups/global/AllUsers""#,
                S3ErrorCode::InvalidArgument,
            ),
            (r#"name="AKIAONE""#, S3ErrorCode::InvalidArgument),
            ("AKIAONE", S3ErrorCode::InvalidArgument),
            (r#"id="AKIAONE"#, S3ErrorCode::InvalidArgument),
            (r#"id="AKIAONE" id="AKIATWO""#, S3ErrorCode::InvalidArgument),
            (r#"id="""#, S3ErrorCode::InvalidArgument),
            ("", S3ErrorCode::InvalidArgument),
            (" , ", S3ErrorCode::InvalidArgument),
            (r#""id"=x"#, S3ErrorCode::InvalidArgument),
        ];
        for (value, expected) in cases {
            let result = Acl::from_grant_values([(Permission::Read, *value)], OWNER);
            assert_eq!(&code_of(result), expected, "value {value:?}");
        }
    }

    #[test]
    fn too_many_header_grants_are_refused() {
        let value: Vec<String> = (0..=MAX_GRANTS).map(|i| format!("id=AKIA{i}")).collect();
        let value = value.join(",");
        let result = Acl::from_grant_values([(Permission::Read, value.as_str())], OWNER);
        assert_eq!(code_of(result), S3ErrorCode::InvalidArgument);
        let exactly_max: Vec<String> = (0..MAX_GRANTS).map(|i| format!("id=AKIA{i}")).collect();
        let exactly_max = exactly_max.join(",");
        let acl = Acl::from_grant_values([(Permission::Read, exactly_max.as_str())], OWNER);
        assert_eq!(acl.expect("at the limit").expect("present").grants.len(), MAX_GRANTS);
    }

    #[test]
    fn canned_and_grant_headers_together_are_refused() {
        let map = headers(&[("x-amz-grant-read", "id=AKIAONE")]);
        let both = Acl::from_request(Some("public-read"), &map, OWNER, OWNER);
        assert_eq!(code_of(both), S3ErrorCode::InvalidRequest);
        let canned_only = Acl::from_request(Some("public-read"), &HeaderMap::new(), OWNER, OWNER).expect("valid");
        assert!(canned_only.expect("present").is_public());
        assert_eq!(
            Acl::from_request(None, &HeaderMap::new(), OWNER, OWNER).expect("valid"),
            None
        );
        let grants_only = Acl::from_request(None, &map, OWNER, OWNER)
            .expect("valid")
            .expect("present");
        assert_eq!(grants_only.grants, vec![Grant::new(user("AKIAONE"), Permission::Read)]);
    }

    #[test]
    fn check_users_exist_rejects_unknown_ids() {
        let acl = Acl::from_grant_values([(Permission::Read, "id=nobody")], OWNER)
            .expect("valid")
            .expect("present");
        assert_eq!(code_of(acl.check_users_exist(known_user)), S3ErrorCode::InvalidArgument);
        // The owner is known without asking.
        assert!(Acl::private("root").check_users_exist(|_| false).is_ok());
    }

    #[test]
    fn from_dto_parses_the_xml_body_form() {
        let xml = r#"<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Owner><ID>AKIAOWNER</ID><DisplayName>owner</DisplayName></Owner>
            <AccessControlList>
              <Grant>
                <Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">
                  <ID>AKIAOTHER</ID><DisplayName>ignored</DisplayName>
                </Grantee>
                <Permission>WRITE_ACP</Permission>
              </Grant>
              <Grant>
                <Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">
                  <URI>http://acs.amazonaws.com/groups/global/AuthenticatedUsers</URI>
                </Grantee>
                <Permission>READ</Permission>
              </Grant>
            </AccessControlList>
          </AccessControlPolicy>"#;
        let acl = Acl::from_dto(&parse_policy_xml(xml), OWNER, known_user).expect("valid");
        assert_eq!(
            acl,
            Acl {
                owner: OWNER.to_owned(),
                grants: vec![
                    Grant::new(user(OTHER), Permission::WriteAcp),
                    Grant::new(Grantee::AuthenticatedUsers, Permission::Read),
                ],
            }
        );
        assert!(acl.allows(Some(OTHER), Permission::WriteAcp, false));
        assert!(acl.allows(Some("AKIATHIRD"), Permission::Read, false));
        assert!(!acl.allows(Some("AKIATHIRD"), Permission::Read, true));
    }

    #[test]
    fn from_dto_without_owner_or_list_is_accepted() {
        let acl = Acl::from_dto(&dto::AccessControlPolicy::default(), OWNER, known_user).expect("valid");
        assert!(acl.grants.is_empty());
        assert!(acl.allows(Some(OWNER), Permission::ReadAcp, false));
        assert!(!acl.allows(Some(OWNER), Permission::Read, false));
    }

    #[test]
    fn from_dto_refuses_an_owner_change() {
        let body = policy(Some(OTHER), vec![dto_user_grant(OTHER, dto::Permission::FULL_CONTROL)]);
        assert_eq!(
            code_of(Acl::from_dto(&body, OWNER, known_user)),
            S3ErrorCode::AccessDenied
        );
    }

    #[test]
    fn from_dto_refuses_bad_grantees() {
        let unknown_id = policy(Some(OWNER), vec![dto_user_grant("nobody", dto::Permission::READ)]);
        assert_eq!(
            code_of(Acl::from_dto(&unknown_id, OWNER, known_user)),
            S3ErrorCode::InvalidArgument
        );

        let unknown_group = policy(
            None,
            vec![dto_group_grant("http://example.com/group", dto::Permission::READ)],
        );
        assert_eq!(
            code_of(Acl::from_dto(&unknown_group, OWNER, known_user)),
            S3ErrorCode::InvalidArgument
        );

        let mut by_email = dto_user_grant("x", dto::Permission::READ);
        if let Some(grantee) = by_email.grantee.as_mut() {
            grantee.type_ = dto::Type::from_static(dto::Type::AMAZON_CUSTOMER_BY_EMAIL);
            grantee.email_address = Some("someone@example.com".to_owned());
        }
        let by_email = policy(None, vec![by_email]);
        assert_eq!(
            code_of(Acl::from_dto(&by_email, OWNER, known_user)),
            S3ErrorCode::UnresolvableGrantByEmailAddress
        );

        let mut odd_type = dto_user_grant(OTHER, dto::Permission::READ);
        if let Some(grantee) = odd_type.grantee.as_mut() {
            grantee.type_ = dto::Type::from_static("Robot");
        }
        let odd_type = policy(None, vec![odd_type]);
        assert_eq!(
            code_of(Acl::from_dto(&odd_type, OWNER, known_user)),
            S3ErrorCode::MalformedACLError
        );

        let mut no_id = dto_user_grant(OTHER, dto::Permission::READ);
        if let Some(grantee) = no_id.grantee.as_mut() {
            grantee.id = None;
        }
        let no_id = policy(None, vec![no_id]);
        assert_eq!(
            code_of(Acl::from_dto(&no_id, OWNER, known_user)),
            S3ErrorCode::MalformedACLError
        );
    }

    #[test]
    fn from_dto_refuses_incomplete_grants_and_bad_permissions() {
        let no_permission = policy(
            None,
            vec![dto::Grant {
                grantee: dto_user_grant(OTHER, dto::Permission::READ).grantee,
                permission: None,
            }],
        );
        assert_eq!(
            code_of(Acl::from_dto(&no_permission, OWNER, known_user)),
            S3ErrorCode::MalformedACLError
        );

        let no_grantee = policy(
            None,
            vec![dto::Grant {
                grantee: None,
                permission: Some(dto::Permission::from_static(dto::Permission::READ)),
            }],
        );
        assert_eq!(
            code_of(Acl::from_dto(&no_grantee, OWNER, known_user)),
            S3ErrorCode::MalformedACLError
        );

        let lowercase_permission = policy(None, vec![dto_user_grant(OTHER, "read")]);
        assert_eq!(
            code_of(Acl::from_dto(&lowercase_permission, OWNER, known_user)),
            S3ErrorCode::MalformedACLError
        );
    }

    #[test]
    fn from_dto_enforces_the_grant_limit() {
        let at_limit = policy(None, vec![dto_user_grant(OTHER, dto::Permission::READ); MAX_GRANTS]);
        let acl = Acl::from_dto(&at_limit, OWNER, known_user).expect("at the limit");
        assert_eq!(acl.grants.len(), 1, "identical grants collapse");
        let over = policy(None, vec![dto_user_grant(OTHER, dto::Permission::READ); MAX_GRANTS + 1]);
        assert_eq!(
            code_of(Acl::from_dto(&over, OWNER, known_user)),
            S3ErrorCode::MalformedACLError
        );
    }

    #[test]
    fn to_dto_reports_users_and_groups() {
        let acl = Acl {
            owner: OWNER.to_owned(),
            grants: vec![
                Grant::new(user(OWNER), Permission::FullControl),
                Grant::new(Grantee::AllUsers, Permission::Read),
            ],
        };
        let (owner, grants) = acl.to_dto(|id| (id == OWNER).then(|| "Owner Name".to_owned()));
        assert_eq!(owner.id.as_deref(), Some(OWNER));
        assert_eq!(owner.display_name.as_deref(), Some("Owner Name"));
        assert_eq!(grants.len(), 2);
        let user_grantee = grants[0].grantee.as_ref().expect("grantee");
        assert_eq!(user_grantee.type_.as_str(), dto::Type::CANONICAL_USER);
        assert_eq!(user_grantee.id.as_deref(), Some(OWNER));
        assert_eq!(user_grantee.display_name.as_deref(), Some("Owner Name"));
        assert_eq!(
            grants[0].permission.as_ref().map(dto::Permission::as_str),
            Some("FULL_CONTROL")
        );
        let group_grantee = grants[1].grantee.as_ref().expect("grantee");
        assert_eq!(group_grantee.type_.as_str(), dto::Type::GROUP);
        assert_eq!(group_grantee.uri.as_deref(), Some(ALL_USERS_URI));
        assert_eq!(group_grantee.id, None);
    }

    #[test]
    fn to_dto_survives_s3s_xml_serialization_and_back() {
        let acl = Acl::canned("public-read-write", OWNER, OWNER).expect("known");
        let (owner, grants) = acl.to_dto(|_| None);
        let body = dto::AccessControlPolicy {
            grants: Some(grants),
            owner: Some(owner),
        };
        let mut xml = Vec::new();
        s3s::xml::Serialize::serialize(&body, &mut s3s::xml::Serializer::new(&mut xml)).expect("serializes");
        let text = String::from_utf8(xml).expect("UTF-8");
        assert!(text.contains(r#"xsi:type="Group""#), "{text}");
        let back = Acl::from_dto(&parse_policy_xml(&text), OWNER, known_user).expect("accepted back");
        assert_eq!(back, acl);
    }

    #[test]
    fn full_control_implies_everything_and_others_only_themselves() {
        let acl = Acl {
            owner: OWNER.to_owned(),
            grants: vec![
                Grant::new(user(OTHER), Permission::FullControl),
                Grant::new(user("AKIAREADER"), Permission::Read),
            ],
        };
        for wanted in [
            Permission::Read,
            Permission::Write,
            Permission::ReadAcp,
            Permission::WriteAcp,
            Permission::FullControl,
        ] {
            assert!(acl.allows(Some(OTHER), wanted, false));
        }
        assert!(acl.allows(Some("AKIAREADER"), Permission::Read, false));
        assert!(!acl.allows(Some("AKIAREADER"), Permission::Write, false));
        assert!(!acl.allows(Some("AKIAREADER"), Permission::ReadAcp, false));
        assert!(!acl.allows(Some("AKIAREADER"), Permission::FullControl, false));
        assert!(!acl.allows(None, Permission::Read, false));
    }

    #[test]
    fn ignore_public_grants_skips_only_public_groups() {
        let mut acl = Acl::canned("public-read", OWNER, OWNER).expect("known");
        acl.grants.push(Grant::new(user(OTHER), Permission::Read));
        assert!(acl.allows(None, Permission::Read, false));
        assert!(!acl.allows(None, Permission::Read, true));
        assert!(!acl.allows(Some("AKIATHIRD"), Permission::Read, true));
        assert!(acl.allows(Some(OTHER), Permission::Read, true));
        assert!(acl.allows(Some(OWNER), Permission::Read, true));
    }

    #[test]
    fn permission_for_action_follows_the_table() {
        assert_eq!(permission_for_action("s3:GetObject", true), Some(Permission::Read));
        assert_eq!(
            permission_for_action("s3:GetObjectVersion", true),
            Some(Permission::Read)
        );
        assert_eq!(
            permission_for_action("s3:GetObjectAcl", true),
            Some(Permission::ReadAcp)
        );
        assert_eq!(
            permission_for_action("s3:PutObjectVersionAcl", true),
            Some(Permission::WriteAcp)
        );
        assert_eq!(permission_for_action("s3:ListBucket", false), Some(Permission::Read));
        assert_eq!(
            permission_for_action("s3:ListBucketMultipartUploads", false),
            Some(Permission::Read)
        );
        assert_eq!(permission_for_action("s3:PutObject", false), Some(Permission::Write));
        assert_eq!(
            permission_for_action("s3:AbortMultipartUpload", false),
            Some(Permission::Write)
        );
        assert_eq!(
            permission_for_action("s3:DeleteObjectVersion", false),
            Some(Permission::Write)
        );
        assert_eq!(
            permission_for_action("s3:GetBucketAcl", false),
            Some(Permission::ReadAcp)
        );
        assert_eq!(
            permission_for_action("s3:PutBucketAcl", false),
            Some(Permission::WriteAcp)
        );
        // Object writes are the bucket's business; bucket config is never granted by ACLs.
        assert_eq!(permission_for_action("s3:PutObject", true), None);
        assert_eq!(permission_for_action("s3:GetObject", false), None);
        assert_eq!(permission_for_action("s3:PutBucketPolicy", false), None);
        assert_eq!(permission_for_action("s3:DeleteBucket", false), None);
        assert_eq!(permission_for_action("s3:getobject", true), None);
    }

    #[test]
    fn acl_round_trips_through_message_pack() {
        let mut acl = Acl::canned("log-delivery-write", OWNER, OWNER).expect("known");
        acl.grants
            .push(Grant::new(Grantee::AuthenticatedUsers, Permission::Read));
        let bytes = rmp_serde::to_vec(&acl).expect("encodes");
        let back: Acl = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(back, acl);
    }

    const SEED_POLICY: &str = r#"<AccessControlPolicy><Owner><ID>AKIAOWNER</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>AKIAOTHER</ID></Grantee><Permission>READ</Permission></Grant><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>WRITE</Permission></Grant></AccessControlList></AccessControlPolicy>"#;

    const SEED_HEADER: &str = r#"id="AKIAONE", uri="http://acs.amazonaws.com/groups/global/AllUsers""#;

    /// Tokens that push mutations towards interesting parser states.
    const TOKENS: &[&str] = &[
        "<",
        ">",
        "</",
        "/>",
        "\"",
        "=",
        ",",
        " ",
        "&amp;",
        "&#0;",
        "&bogus;",
        "id=",
        "uri=",
        "emailAddress=",
        "<Grant>",
        "</Grant>",
        "CanonicalUser",
        "Group",
        "AmazonCustomerByEmail",
        "FULL_CONTROL",
        "<ID>AKIAX</ID>",
        "<Owner><ID>AKIAOTHER</ID></Owner>",
        "\u{00e9}",
        "\u{fffd}",
        "\0",
    ];

    use crate::util::test_mutation::{mutate, XorShift};

    #[test]
    fn seeds_are_accepted_by_the_fuzz_entry() {
        let outcome = fuzz_outcome(SEED_POLICY.as_bytes());
        assert!(outcome.xml_parsed && outcome.policy_accepted, "{outcome:?}");
        assert!(fuzz_outcome(SEED_HEADER.as_bytes()).headers_accepted);
        fuzz(SEED_POLICY.as_bytes());
        fuzz(b"");
    }

    #[test]
    fn fuzz_survives_100k_mutations() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        // Inputs that got through become seeds too, so mutations reach deeper than one step;
        // one corpus per seed kind, so neither crowds the other out.
        let mut policies: Vec<Vec<u8>> = vec![SEED_POLICY.into()];
        let mut header_values: Vec<Vec<u8>> = vec![SEED_HEADER.into()];
        let (mut parsed, mut accepted, mut rejected, mut headers_accepted) = (0, 0, 0, 0);
        for round in 0..100_000 {
            let corpus = if round % 2 == 0 {
                &mut policies
            } else {
                &mut header_values
            };
            let parent = rng.below(corpus.len());
            let data = mutate(&mut rng, &corpus[parent], TOKENS);
            let outcome = fuzz_outcome(&data);
            parsed += usize::from(outcome.xml_parsed);
            accepted += usize::from(outcome.policy_accepted);
            rejected += usize::from(outcome.xml_parsed && !outcome.policy_accepted);
            headers_accepted += usize::from(outcome.headers_accepted);
            let keep = if round % 2 == 0 {
                outcome.policy_accepted
            } else {
                outcome.headers_accepted
            };
            if keep && corpus.len() < 256 {
                corpus.push(data);
            }
        }
        // The mutations must reach from_dto both ways, or the loop proves little.
        assert!(accepted > 1_000, "accepted {accepted} of {parsed} parsed");
        assert!(rejected > 100, "rejected {rejected} of {parsed} parsed");
        assert!(headers_accepted > 1_000, "header values accepted: {headers_accepted}");
        eprintln!(
            "acl fuzz: {parsed} parsed, {accepted} accepted, {rejected} rejected, {headers_accepted} header values"
        );
    }
}
