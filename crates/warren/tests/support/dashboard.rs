//! The dashboard (`/ui/` on the edge's admin listener) used with curl, as
//! a browser without JavaScript would: a cookie jar of its own, forms
//! posted with the CSRF token of the page they came from. Redirects are
//! not followed, so tests see each one.

use std::path::{Path, PathBuf};

use super::{curl, Curl, Edge};

/// One browser's worth of the dashboard: its address and cookie jar.
pub struct Dashboard {
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub base: String,
    jar: PathBuf,
}

impl Dashboard {
    /// A fresh client (empty cookie jar in `dir`) for `edge`'s dashboard.
    pub fn new(edge: &Edge, dir: &Path) -> Dashboard {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Dashboard {
            base: format!("http://{}", edge.admin),
            jar: dir.join(format!("dashboard-cookies-{n}.txt")),
        }
    }

    /// Its cookie jar (curl's format).
    pub fn jar(&self) -> &Path {
        &self.jar
    }

    fn common(&self) -> Vec<String> {
        let jar = self.jar.display().to_string();
        ["-sS", "-i", "--max-time", "30", "-c", &jar, "-b", &jar]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    /// `GET path`, with the jar's cookies and `headers` (`name: value`).
    pub async fn get_with(&self, path: &str, headers: &[&str]) -> Curl {
        let mut args = self.common();
        for h in headers {
            args.extend(["-H".to_owned(), (*h).to_owned()]);
        }
        args.push(format!("{}{path}", self.base));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args).await
    }

    /// `GET path` with the jar's cookies.
    pub async fn get(&self, path: &str) -> Curl {
        self.get_with(path, &[]).await
    }

    /// `POST path` of a form with `fields` (URL-encoded here) and
    /// `headers` (`name: value`).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)], headers: &[&str]) -> Curl {
        let mut args = self.common();
        for h in headers {
            args.extend(["-H".to_owned(), (*h).to_owned()]);
        }
        if fields.is_empty() {
            args.extend(["--data".to_owned(), String::new()]);
        }
        for (k, v) in fields {
            args.extend(["--data-urlencode".to_owned(), format!("{k}={v}")]);
        }
        args.push(format!("{}{path}", self.base));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args).await
    }

    /// Signs in with the admin `token` from the sign-in page's form;
    /// returns the session's CSRF token (from the first page after it).
    pub async fn sign_in(&self, token: &str) -> String {
        let form = self.get("/ui/sign-in").await;
        assert_eq!(form.status, 200, "{} {}", form.headers, form.body);
        let csrf = csrf_of(&form.body).expect("the sign-in form has a CSRF token");
        let r = self
            .post("/ui/sign-in", &[("_csrf", &csrf), ("token", token)], &[])
            .await;
        assert_eq!(r.status, 303, "sign-in: {} {}", r.headers, r.body);
        assert!(r.headers.contains("location: /ui/tunnels"), "{}", r.headers);
        let page = self.get("/ui/tunnels").await;
        assert_eq!(page.status, 200, "{} {}", page.headers, page.body);
        csrf_of(&page.body).expect("a signed-in page carries the session's CSRF token")
    }
}

/// The value of the first `_csrf` form field of `html`.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"_csrf\" value=\"")? + "name=\"_csrf\" value=\"".len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The text of the element with `id` in `html` (up to its first tag end),
/// entities decoded.
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let open = html.find(&format!("id=\"{id}\""))?;
    let start = open + html[open..].find('>')? + 1;
    let end = start + html[start..].find('<')?;
    Some(unescape(html[start..end].trim()))
}

/// The value of attribute `attr` of the element with `id`, decoded.
pub fn attribute(html: &str, id: &str, attr: &str) -> Option<String> {
    let open = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..open].rfind('<')?;
    let tag = &html[tag_start..open + html[open..].find('>')?];
    let at = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
    Some(unescape(&tag[at..at + tag[at..].find('"')?]))
}

/// `text` with the entities askama writes (`&#38;` ...) and the common
/// named ones decoded.
pub fn unescape(text: &str) -> String {
    text.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}
