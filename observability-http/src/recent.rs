//! Text the layers put on span after span — the route, the host, the user
//! agent, the peer's address, the address a client calls — shared between
//! spans instead of copied into each one.
//!
//! A sampled span owns its strings until the export thread frees them, so a
//! copy per span costs an allocation on the request's thread and a free on
//! another. Two kinds of sharing avoid that:
//!
//! - **Routes** come from the application's route table (axum's matched
//!   path), never from a request, so their span names (`GET /orders/{id}`)
//!   and `http.route` values are interned once per process as `'static`
//!   text, up to [`ROUTE_LIMIT`] names; past that, spans get their own copy.
//! - **Request text** (host, path, user agent, client address, and the
//!   address an outgoing call goes to) can come from anyone, so it is never
//!   interned: each thread keeps only the last value it saw per attribute,
//!   reference-counted, and a span whose value is the same takes another
//!   count on it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use http::HeaderValue;

use crate::attributes::{ip_text, split_host_port};

/// How many distinct `{method} {route}` names a process interns.
pub(crate) const ROUTE_LIMIT: usize = 1024;

/// A route's span name and `http.route` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteName {
    pub(crate) name: &'static str,
    pub(crate) route: &'static str,
}

#[derive(Default)]
struct Routes {
    /// Per interned route: the names made from it so far, by method.
    by_route: HashMap<&'static str, Vec<(&'static str, RouteName)>>,
    names: usize,
}

impl Routes {
    fn intern(&mut self, method: &'static str, route: &str, limit: usize) -> Option<RouteName> {
        let interned = match self.by_route.get_key_value(route) {
            Some((interned, names)) => {
                if let Some((_, found)) = names.iter().find(|(m, _)| *m == method) {
                    return Some(*found);
                }
                Some(*interned)
            }
            None => None,
        };
        if self.names >= limit {
            return None;
        }
        self.names += 1;
        let route: &'static str = interned.unwrap_or_else(|| Box::leak(route.into()));
        let found = RouteName {
            name: Box::leak(format!("{method} {route}").into_boxed_str()),
            route,
        };
        self.by_route
            .entry(route)
            .or_default()
            .push((method, found));
        Some(found)
    }
}

static ROUTES: Mutex<Option<Routes>> = Mutex::new(None);

/// Which request text a [`Recent`] slot holds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    Path = 0,
    UserAgent = 1,
    Client = 2,
    /// The `server.address` of the client layer's calls.
    CalledAddress = 3,
}

const SLOTS: usize = 4;

#[derive(Default)]
struct Recent {
    route: Option<(&'static str, RouteName)>,
    text: [Option<Arc<str>>; SLOTS],
    /// The last host text, and the address and port split from it.
    host: Option<(Box<str>, Arc<str>, Option<u16>)>,
    peer: Option<(IpAddr, Arc<str>)>,
}

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::new(Recent::default());
}

/// The interned name (`{method} {route}`) and route for `method` and
/// `route`, or `None` once [`ROUTE_LIMIT`] names are interned.
pub(crate) fn route_name(method: &'static str, route: &str) -> Option<RouteName> {
    let last = RECENT.with(|r| r.borrow().route);
    if let Some((m, found)) = last
        && m == method
        && found.route == route
    {
        return Some(found);
    }
    let found = intern_route(method, route)?;
    RECENT.with(|r| r.borrow_mut().route = Some((method, found)));
    Some(found)
}

fn intern_route(method: &'static str, route: &str) -> Option<RouteName> {
    let mut routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    routes
        .get_or_insert_with(Routes::default)
        .intern(method, route, ROUTE_LIMIT)
}

/// `text` as a shared string: the one this thread last gave `slot` when it
/// is the same text, a new one (kept for next time) otherwise.
pub(crate) fn shared(slot: Slot, text: &str) -> Arc<str> {
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        let held = &mut r.text[slot as usize];
        match held {
            Some(same) if **same == *text => Arc::clone(same),
            _ => Arc::clone(held.insert(Arc::from(text))),
        }
    })
}

/// The address and port in a `Host`-style `host[:port]`, the address
/// shared as in [`shared`].
pub(crate) fn host(text: &str) -> (Arc<str>, Option<u16>) {
    if let Some(last) = last_host(text.as_bytes()) {
        return last;
    }
    let (address, port) = split_host_port(text);
    let address: Arc<str> = Arc::from(address);
    RECENT.with(|r| r.borrow_mut().host = Some((text.into(), Arc::clone(&address), port)));
    (address, port)
}

/// [`host`] of a `Host` header's value, or `None` when it is not text
/// (visible ASCII). The value is compared with the last host text as bytes
/// first: that text was valid, so an equal value is too, and is not read as
/// text again.
pub(crate) fn host_header(value: &HeaderValue) -> Option<(Arc<str>, Option<u16>)> {
    last_host(value.as_bytes()).or_else(|| value.to_str().ok().map(host))
}

/// The address and port of the last host text this thread saw, when `raw`
/// is that text.
fn last_host(raw: &[u8]) -> Option<(Arc<str>, Option<u16>)> {
    RECENT.with(|r| match &r.borrow().host {
        Some((last, address, port)) if last.as_bytes() == raw => Some((Arc::clone(address), *port)),
        _ => None,
    })
}

/// The text of the peer's IP address, shared as in [`shared`].
pub(crate) fn peer(ip: IpAddr) -> Arc<str> {
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        match &r.peer {
            Some((same, text)) if *same == ip => Arc::clone(text),
            _ => {
                let text = ip_text(ip);
                r.peer = Some((ip, Arc::clone(&text)));
                text
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_are_interned_per_method() {
        let get = route_name("GET", "/recent/{id}").expect("under the limit");
        assert_eq!(get.name, "GET /recent/{id}");
        assert_eq!(get.route, "/recent/{id}");
        let again = route_name("GET", "/recent/{id}").expect("under the limit");
        assert!(std::ptr::eq(get.name, again.name));
        let post = route_name("POST", "/recent/{id}").expect("under the limit");
        assert_eq!(post.name, "POST /recent/{id}");
        assert!(std::ptr::eq(get.route, post.route));
        // From another thread (no per-thread memo): the same interned text.
        let other = std::thread::spawn(|| route_name("POST", "/recent/{id}"))
            .join()
            .expect("thread")
            .expect("under the limit");
        assert!(std::ptr::eq(post.name, other.name));
    }

    #[test]
    fn past_the_limit_nothing_more_is_interned() {
        let mut routes = Routes::default();
        let a = routes.intern("GET", "/a", 2).expect("first");
        let b = routes.intern("POST", "/a", 2).expect("second");
        assert!(std::ptr::eq(a.route, b.route));
        assert_eq!(routes.intern("GET", "/b", 2), None);
        assert_eq!(routes.intern("PUT", "/a", 2), None);
        // What is interned stays served.
        assert_eq!(routes.intern("GET", "/a", 2), Some(a));
        assert_eq!(routes.intern("POST", "/a", 2), Some(b));
        assert_eq!(routes.names, 2);
    }

    #[test]
    fn request_text_is_shared_only_while_it_repeats() {
        let a = shared(Slot::UserAgent, "curl/8.5");
        let b = shared(Slot::UserAgent, "curl/8.5");
        assert!(Arc::ptr_eq(&a, &b));
        let c = shared(Slot::UserAgent, "wget");
        assert_eq!(&*c, "wget");
        let d = shared(Slot::UserAgent, "curl/8.5");
        assert_eq!(&*d, "curl/8.5");
        assert!(!Arc::ptr_eq(&a, &d));
        // Slots do not mix.
        assert_eq!(&*shared(Slot::Path, "wget"), "wget");
        assert_eq!(&*shared(Slot::UserAgent, "curl/8.5"), "curl/8.5");
    }

    #[test]
    fn a_host_header_is_read_as_text_only_when_it_changes() {
        let value = |bytes: &[u8]| HeaderValue::from_bytes(bytes).expect("a header value");
        let first = host_header(&value(b"shop.example:8443")).expect("text");
        assert_eq!(first, (Arc::from("shop.example"), Some(8443)));
        // The same bytes: the same shared address.
        let again = host_header(&value(b"shop.example:8443")).expect("text");
        assert!(Arc::ptr_eq(&first.0, &again.0));
        assert_eq!(
            host_header(&value(b"api.example")),
            Some((Arc::from("api.example"), None))
        );
        // Not visible ASCII: no host, and the last one stays.
        assert_eq!(host_header(&value(b"caf\xc3\xa9.example")), None);
        assert_eq!(host("api.example"), (Arc::from("api.example"), None));
    }

    #[test]
    fn hosts_and_peers() {
        assert_eq!(
            host("example.com:8080"),
            (Arc::from("example.com"), Some(8080))
        );
        assert_eq!(
            host("example.com:8080"),
            (Arc::from("example.com"), Some(8080))
        );
        assert_eq!(host("[::1]:80"), (Arc::from("::1"), Some(80)));
        assert_eq!(host("example.com"), (Arc::from("example.com"), None));
        let v4: IpAddr = "10.0.0.7".parse().expect("ip");
        let v6: IpAddr = "::1".parse().expect("ip");
        assert_eq!(&*peer(v4), "10.0.0.7");
        assert!(Arc::ptr_eq(&peer(v4), &peer(v4)));
        assert_eq!(&*peer(v6), "::1");
        assert_eq!(&*peer(v4), "10.0.0.7");
    }
}
