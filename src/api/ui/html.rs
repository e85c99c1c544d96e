//! HTML for the web page: escaping, the page around every view, and small pieces (forms with their CSRF token,
//! face pictures). Every value from the gallery, an event or a request goes through [`esc`].

use std::fmt::Write;

/// `s` safe inside HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `s` as one URL path segment or query value.
pub fn url(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The pages of the navigation: (path, title).
pub const NAV: &[(&str, &str)] = &[
    ("/ui/live", "Live"),
    ("/ui/events", "Events"),
    ("/ui/people", "People"),
    ("/ui/strangers", "Strangers"),
    ("/ui/check", "Check a photo"),
];

/// A whole page: `title`, the navigation with `current` marked (none on the login page), `body`.
pub fn page(title: &str, current: Option<&str>, csrf: Option<&str>, body: &str) -> String {
    let mut nav = String::new();
    if let Some(current) = current {
        for (path, name) in NAV {
            let mark = if *path == current { " aria-current=\"page\"" } else { "" };
            let _ = write!(nav, "<a href=\"{path}\"{mark}>{name}</a>");
        }
    }
    let logout = csrf.map_or_else(String::new, |t| {
        format!("<form method=\"post\" action=\"/ui/logout\">{}<button type=\"submit\">Log out</button></form>", token(t))
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · facewatch</title><link rel=\"icon\" href=\"/ui/static/icon.svg\" type=\"image/svg+xml\"><link rel=\"stylesheet\" href=\"/ui/static/ui.css\"><script src=\"/ui/static/ui.js\" defer></script></head>\
         <body><header><span class=\"brand\">facewatch</span><nav aria-label=\"Pages\">{nav}</nav>{logout}</header>\
         <main id=\"main\"><h1>{}</h1>{body}</main></body></html>\n",
        esc(title),
        esc(title)
    )
}

/// The hidden CSRF field every form carries.
pub fn token(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(csrf))
}

/// A form posting to `action` with `fields` and a submit button `button` (`class`: its look); `confirm`: what the
/// browser asks first.
pub fn form(action: &str, csrf: &str, fields: &str, button: &str, class: &str, confirm: Option<&str>) -> String {
    let ask = confirm.map_or_else(String::new, |c| format!(" data-confirm=\"{}\"", esc(c)));
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\"{ask}>{}{fields}<button type=\"submit\" class=\"{class}\">{}</button></form>",
        esc(action),
        token(csrf),
        esc(button)
    )
}

/// A labelled text input.
pub fn text_input(name: &str, label: &str, value: &str, list: Option<&str>) -> String {
    let id = format!("f-{name}-{:x}", fxhash(label));
    let list = list.map_or_else(String::new, |l| format!(" list=\"{}\"", esc(l)));
    format!(
        "<label for=\"{id}\">{}</label><input type=\"text\" id=\"{id}\" name=\"{}\" value=\"{}\" required maxlength=\"200\"{list}>",
        esc(label),
        esc(name),
        esc(value)
    )
}

/// A small stable hash, for ids of inputs that several forms on one page have.
fn fxhash(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Seconds since the epoch as the page shows them.
pub fn when(t: i64) -> String {
    crate::base::event::utc_text(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_anywhere_cannot_become_markup() {
        assert_eq!(esc("<script>alert('x')</script> & \"q\""), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
        assert_eq!(esc("a\u{0}b\nc"), "abc");
        assert_eq!(url("Ann B/é?"), "Ann%20B%2F%C3%A9%3F");
        let p = page("<x>", Some("/ui/live"), Some("t\"ok"), "<p>body</p>");
        assert!(p.contains("<title>&lt;x&gt; · facewatch</title>") && p.contains("value=\"t&quot;ok\""), "{p}");
        assert!(p.contains("href=\"/ui/live\" aria-current=\"page\""));
        assert!(!p.contains("<script>") || p.contains("<script src=\"/ui/static/ui.js\" defer></script>"), "no inline script");
    }
}
