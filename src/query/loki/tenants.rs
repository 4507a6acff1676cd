//! `X-Scope-OrgID`: the tenants a Loki client asks to read (`a|b|c` for
//! several, as Loki takes them).
//!
//! Read and ignored for now: OgLogStream has no tenants yet. When they
//! land, the request's read scope comes from here (and a request naming
//! several tenants gets `__tenant_id__` on its streams, as Loki answers
//! multi-tenant queries).

use actix_web::HttpRequest;

pub const HEADER: &str = "X-Scope-OrgID";

/// The tenants the request names; `None` without the header (or with an
/// empty one).
pub fn requested_tenants(request: &HttpRequest) -> Option<Vec<String>> {
    let value = request.headers().get(HEADER)?.to_str().ok()?;
    let tenants: Vec<String> = value
        .split('|')
        .map(str::trim)
        .filter(|tenant| !tenant.is_empty())
        .map(str::to_string)
        .collect();
    (!tenants.is_empty()).then_some(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn tenants_are_split_on_pipes() {
        let request = TestRequest::default()
            .insert_header((HEADER, "team-a| team-b ||"))
            .to_http_request();
        assert_eq!(
            requested_tenants(&request),
            Some(vec!["team-a".to_string(), "team-b".to_string()])
        );
        assert_eq!(
            requested_tenants(&TestRequest::default().to_http_request()),
            None
        );
        let blank = TestRequest::default()
            .insert_header((HEADER, " "))
            .to_http_request();
        assert_eq!(requested_tenants(&blank), None);
    }
}
