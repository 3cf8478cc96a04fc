//! Which body type a [`ServerService`](super::ServerService) answers with.
//!
//! The span of a request ends when its response body ends, so a traced
//! response's body is wrapped in a [`ResponseBody`]. A response whose span
//! does not record (the request was sampled out) needs no wrapper; whether it
//! still gets one is a matter of types, chosen here:
//!
//! - [`WrapBody`], the default, answers with `ResponseBody<B>` for any inner
//!   body `B` (hyper, tonic, any tower stack).
//! - `AxumBody` answers with `axum::body::Body`, the body axum's router
//!   turns every response into. A sampled-out response passes its body on
//!   untouched; a traced one is boxed once, as the router would box it. The
//!   router otherwise boxes the wrapper of every response, recorded or not:
//!   one allocation per request and a `dyn` call per frame that
//!   `ServerLayer::for_axum` saves.

use crate::ResponseBody;

mod sealed {
    pub trait Sealed {}
}

/// How a [`ServerService`](super::ServerService) hands the inner service's
/// response body `B` back: [`WrapBody`], or `AxumBody` (with the `axum`
/// feature). Sealed.
pub trait ServerBody<B>: sealed::Sealed {
    /// The response body the service answers with.
    type Body;

    /// The body of a response with nothing to record or time.
    #[doc(hidden)]
    fn plain(body: B) -> Self::Body;

    /// The body of a response whose span or gRPC timing ends with the body.
    #[doc(hidden)]
    fn wrapped(body: ResponseBody<B>) -> Self::Body;
}

/// Answers with [`ResponseBody<B>`] around any inner body: the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WrapBody;

impl sealed::Sealed for WrapBody {}

impl<B> ServerBody<B> for WrapBody {
    type Body = ResponseBody<B>;

    #[inline]
    fn plain(body: B) -> Self::Body {
        ResponseBody::untraced(body)
    }

    #[inline]
    fn wrapped(body: ResponseBody<B>) -> Self::Body {
        body
    }
}

/// Answers with `axum::body::Body`, for an axum router's inner services
/// (whose bodies are that type already): see
/// [`ServerLayer::for_axum`](super::ServerLayer::for_axum).
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AxumBody;

#[cfg(feature = "axum")]
impl sealed::Sealed for AxumBody {}

#[cfg(feature = "axum")]
impl ServerBody<axum::body::Body> for AxumBody {
    type Body = axum::body::Body;

    #[inline]
    fn plain(body: axum::body::Body) -> Self::Body {
        body
    }

    #[inline]
    fn wrapped(body: ResponseBody<axum::body::Body>) -> Self::Body {
        axum::body::Body::new(body)
    }
}
