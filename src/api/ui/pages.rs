//! The web page's views and forms: each handler reads what it shows through the API's own models and gallery
//! connection ([`super::super::with_work`]) and renders it with [`super::html`].

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path as UrlPath, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::html::{esc, form, page, text_input, url, when};
use super::{upload_form, UiSession};
use crate::api::{with_work, Failure, Shared};
use crate::gallery::strangers::{is_label, FaceTarget};
use crate::gallery::GalleryError;

type Q = Query<HashMap<String, String>>;

/// An HTML answer.
pub(super) fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The login page, with what went wrong, if anything.
pub(super) fn login(error: Option<&str>) -> String {
    let error = error.map_or_else(String::new, |e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)));
    let body = format!(
        "<div class=\"login card\">{error}<p>Log in with one of this daemon's API keys (<code>api.keys_file</code>).</p>\
         <form method=\"post\" action=\"/ui/login\"><p><label for=\"key\">API key</label><br>\
         <input type=\"password\" id=\"key\" name=\"key\" autocomplete=\"current-password\" required autofocus></p>\
         <p><button type=\"submit\">Log in</button></p></form></div>"
    );
    page("Log in", None, None, &body)
}

/// A page of the logged-in site.
fn view(title: &str, current: &str, session: &UiSession, body: &str) -> Response {
    html(StatusCode::OK, page(title, Some(current), Some(&session.csrf), body))
}

/// What went wrong, as a page (the API's message and status).
fn failed(f: Failure, current: &str, session: &UiSession) -> Response {
    let body = format!("<p class=\"error\" role=\"alert\">{}</p><p><a href=\"{current}\">Back</a></p>", esc(&f.1));
    html(f.0, page("Something went wrong", Some(current), Some(&session.csrf), &body))
}

/// A notice carried over a redirect (`?done=…`).
fn notice(q: &HashMap<String, String>) -> String {
    q.get("done").map_or_else(String::new, |d| format!("<p class=\"notice\" role=\"status\">{}</p>", esc(d)))
}

/// After a form: back to `to`, saying `done`.
fn done(to: &str, what: &str) -> Response {
    // A report of many photos is cut, so that the redirect stays well below a proxy's header limits.
    let what = match what.char_indices().nth(600) {
        Some((cut, _)) => format!("{}… (more not shown)", &what[..cut]),
        None => what.to_string(),
    };
    Redirect::to(&format!("{to}?done={}", url(&what))).into_response()
}

fn camera_names(shared: &Shared) -> Vec<String> {
    shared.cameras.lock().iter().map(|c| c.name.clone()).collect()
}

/// Live: each camera's annotated picture (MJPEG) and who is in view (refreshed by the page's script).
pub(super) async fn live(State(shared): State<Arc<Shared>>, Extension(session): Extension<UiSession>) -> Response {
    shared.live.asked();
    let mut body = String::from("<div class=\"grid\">");
    for camera in camera_names(&shared) {
        let _ = write!(
            body,
            "<section class=\"card live\"><h2>{}</h2><img src=\"/ui/live/{}.mjpg\" alt=\"The annotated picture of camera {}\">\
             <h3>In view</h3><ul data-in-view=\"{}\"><li class=\"muted\">…</li></ul></section>",
            esc(&camera),
            url(&camera),
            esc(&camera),
            esc(&camera)
        );
    }
    body.push_str("</div><p class=\"muted\">Pictures are made while this page is open, five a second at most.</p>");
    view("Live", "/ui/live", &session, &body)
}

/// Who is in view of each camera now.
pub(super) async fn live_json(State(shared): State<Arc<Shared>>) -> Response {
    let mut cameras = serde_json::Map::new();
    for camera in camera_names(&shared) {
        let in_view = shared.live.latest(&camera).map(|p| p.in_view).unwrap_or_default();
        cameras.insert(camera, serde_json::json!({ "in_view": in_view }));
    }
    axum::Json(serde_json::json!({ "cameras": cameras })).into_response()
}

/// `/ui/live/CAMERA.mjpg`: the camera's pictures as they come (MJPEG); `/ui/live/CAMERA.jpg`: the latest.
pub(super) async fn live_stream(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(file): UrlPath<String>,
) -> Response {
    let (camera, stream) = match (file.strip_suffix(".mjpg"), file.strip_suffix(".jpg")) {
        (Some(c), _) => (c.to_string(), true),
        (None, Some(c)) => (c.to_string(), false),
        _ => return (StatusCode::NOT_FOUND, "no such picture").into_response(),
    };
    if !camera_names(&shared).contains(&camera) {
        return (StatusCode::NOT_FOUND, "no such camera").into_response();
    }
    if !stream {
        return match shared.live.latest(&camera).and_then(|p| p.jpeg) {
            Some(jpeg) => ([(header::CONTENT_TYPE, "image/jpeg")], Body::from(jpeg.to_vec())).into_response(),
            None => (StatusCode::NOT_FOUND, "no picture yet").into_response(),
        };
    }
    // A session streams at most MAX_STREAMS cameras at once, and a stream ends with its session (logout, expiry).
    let Some(slot) = shared.sessions.stream_slot(&session.token) else {
        return (StatusCode::TOO_MANY_REQUESTS, "too many live pictures open for this session").into_response();
    };
    let live = shared.live.clone();
    let shared = shared.clone();
    let parts = crate::api::async_stream(move |tx| async move {
        let _slot = slot;
        let mut changed = live.subscribe();
        let mut seen = 0u64;
        loop {
            if let Some(p) = live.latest(&camera) {
                if let (true, Some(jpeg)) = (p.seq != seen, p.jpeg) {
                    seen = p.seq;
                    let mut part = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len()).into_bytes();
                    part.extend_from_slice(&jpeg);
                    part.extend_from_slice(b"\r\n");
                    if tx.send(Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(part))).await.is_err() {
                        return;
                    }
                }
            }
            // A new picture wakes the stream; the timeout keeps the camera asked while it waits.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), changed.changed()).await;
            if tx.is_closed() || !shared.sessions.alive(&session.token) {
                return;
            }
        }
    });
    ([(header::CONTENT_TYPE, "multipart/x-mixed-replace; boundary=frame")], Body::from_stream(parts)).into_response()
}

/// Events: the latest identity decisions with their faces, newest first; filters by camera, person, unknown.
pub(super) async fn events(State(shared): State<Arc<Shared>>, Extension(session): Extension<UiSession>, Query(q): Q) -> Response {
    let camera = q.get("camera").filter(|c| !c.is_empty());
    let person = q.get("person").map(|p| p.trim()).filter(|p| !p.is_empty());
    let unknown = q.get("unknown").is_some_and(|u| u == "1");
    let mut rows = String::new();
    let mut shown = 0usize;
    for r in shared.feed.recent() {
        let Some(face) = r.event.body.track() else { continue };
        let name = face.stranger.clone().filter(|_| !face.known).unwrap_or_else(|| face.name.clone());
        if camera.is_some_and(|c| *c != r.event.camera) || person.is_some_and(|p| p != name && p != face.name) || (unknown && face.known) {
            continue;
        }
        shown += 1;
        let picture = match r.event.picture.is_some() {
            true => format!("<img src=\"/ui/img/event/{}\" alt=\"Face of {}\">", r.n, esc(&name)),
            false => String::new(),
        };
        let at = r.event.frame_ts.map_or_else(String::new, |t| when(t as i64));
        let class = if face.known { "known" } else { "unknown" };
        let link = match (face.known, face.stranger.as_deref()) {
            (true, _) => format!("<a class=\"{class}\" href=\"/ui/people/{}\">{}</a>", url(&name), esc(&name)),
            (false, Some(l)) => format!("<a class=\"{class}\" href=\"/ui/strangers/{}\">{}</a>", url(l), esc(l)),
            (false, None) => format!("<span class=\"{class}\">unknown</span>"),
        };
        let _ = write!(
            rows,
            "<tr><td>{picture}</td><td>{}</td><td>{}</td><td>{link}</td><td>{:.2}</td><td>track {} · {}</td></tr>",
            esc(&at),
            esc(&r.event.camera),
            face.score,
            face.track_id,
            if r.event.kind() == crate::base::EventKind::TrackStarted { "new track" } else { "changed" }
        );
    }
    let cameras: String = camera_names(&shared)
        .iter()
        .map(|c| format!("<option value=\"{}\"{}>{}</option>", esc(c), if camera == Some(c) { " selected" } else { "" }, esc(c)))
        .collect();
    let body = format!(
        "<form class=\"inline\" method=\"get\" action=\"/ui/events\"><label for=\"camera\">Camera</label>\
         <select id=\"camera\" name=\"camera\"><option value=\"\">every camera</option>{cameras}</select>\
         <label for=\"person\">Person or stranger</label><input type=\"text\" id=\"person\" name=\"person\" value=\"{}\">\
         <label><input type=\"checkbox\" name=\"unknown\" value=\"1\"{}> unknown faces only</label>\
         <button type=\"submit\" class=\"secondary\">Filter</button></form>\
         <p class=\"muted\">{shown} decision(s), newest first (the latest {} are kept while the daemon runs).</p>\
         <table class=\"timeline\"><thead><tr><th>Face</th><th>When (UTC)</th><th>Camera</th><th>Who</th><th>Score</th><th>Track</th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        esc(person.unwrap_or("")),
        if unknown { " checked" } else { "" },
        crate::sinks::sse::RECENT
    );
    view("Events", "/ui/events", &session, &body)
}

/// The face of a decision on the Events page.
pub(super) async fn event_picture(State(shared): State<Arc<Shared>>, UrlPath(n): UrlPath<u64>) -> Response {
    match shared.feed.picture(n) {
        Some(jpeg) => ([(header::CONTENT_TYPE, "image/jpeg")], Body::from(jpeg.to_vec())).into_response(),
        None => (StatusCode::NOT_FOUND, "no such picture (the latest decisions only are kept)").into_response(),
    }
}

fn jpeg(found: Result<Option<Vec<u8>>, Failure>) -> Response {
    match found {
        Ok(Some(jpeg)) => ([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no picture kept").into_response(),
        Err(f) => (f.0, f.1).into_response(),
    }
}

/// A gallery photo's face crop.
pub(super) async fn photo_picture(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<i64>) -> Response {
    jpeg(with_work(&shared, move |_, gallery| Ok(gallery.store().photo_crop(id)?)).await)
}

/// A stranger's face (`?scene=1`: with the scene around it).
pub(super) async fn stranger_picture(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<i64>, Query(q): Q) -> Response {
    let scene = q.get("scene").is_some_and(|s| s == "1");
    jpeg(with_work(&shared, move |_, gallery| Ok(gallery.store().stranger_face_image(id, scene)?)).await)
}

/// The form that adds photos: to `name`, or with a name field.
fn add_photos_form(session: &UiSession, name: Option<&str>) -> String {
    let who = match name {
        Some(n) => format!("<input type=\"hidden\" name=\"name\" value=\"{}\">", esc(n)),
        None => text_input("name", "Name", "", Some("people")),
    };
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/ui/people\" enctype=\"multipart/form-data\">{}{who}\
         <label for=\"photos\">Photos (one face each)</label><input type=\"file\" id=\"photos\" name=\"photos\" accept=\"image/*\" multiple required>\
         <button type=\"submit\">Add photos</button></form>",
        super::html::token(&session.csrf)
    )
}

fn people_list(names: &[String]) -> String {
    let options: String = names.iter().map(|n| format!("<option value=\"{}\">", esc(n))).collect();
    format!("<datalist id=\"people\">{options}</datalist>")
}

/// People: the gallery.
pub(super) async fn people(State(shared): State<Arc<Shared>>, Extension(session): Extension<UiSession>, Query(q): Q) -> Response {
    let persons = match with_work(&shared, |_, gallery| Ok(gallery.persons()?)).await {
        Ok(p) => p,
        Err(f) => return failed(f, "/ui/people", &session),
    };
    let names: Vec<String> = persons.iter().map(|p| p.name.clone()).collect();
    let mut rows = String::new();
    for p in &persons {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/ui/people/{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            url(&p.name),
            esc(&p.name),
            p.embeddings,
            esc(&when(p.created_at))
        );
    }
    let body = format!(
        "{}<h2>Enrolled people</h2><table><thead><tr><th>Name</th><th>Photos</th><th>Enrolled (UTC)</th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>Add photos</h2><p class=\"muted\">A new name enrolls a new person; an existing one adds to them.</p>{}{}",
        notice(&q),
        add_photos_form(&session, None),
        people_list(&names)
    );
    view("People", "/ui/people", &session, &body)
}

/// One person: their photos, with what can be done to each.
pub(super) async fn person(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(name): UrlPath<String>,
    Query(q): Q,
) -> Response {
    let n = name.clone();
    let (photos, names) = match with_work(&shared, move |_, gallery| {
        Ok((gallery.photos(&n)?, gallery.persons()?.into_iter().map(|p| p.name).collect::<Vec<_>>()))
    })
    .await
    {
        Ok(x) => x,
        Err(f) => return failed(f, "/ui/people", &session),
    };
    let csrf = &session.csrf;
    let mut cards = String::new();
    for p in &photos {
        let source = std::path::Path::new(&p.path).file_name().map_or_else(|| p.path.clone(), |f| f.to_string_lossy().into_owned());
        let _ = write!(
            cards,
            "<div class=\"card\"><img class=\"face\" src=\"/ui/img/photo/{}\" alt=\"Photo {} of {}\"><p class=\"muted\">{} · {}</p>{}{}{}</div>",
            p.id,
            p.id,
            esc(&name),
            esc(&source),
            esc(&when(p.created_at)),
            form(&format!("/ui/photos/{}/move", p.id), csrf, &text_input("to", &format!("Not {name}? It is"), "", Some("people")), "Move", "secondary", None),
            form(&format!("/ui/photos/{}/move", p.id), csrf, "<input type=\"hidden\" name=\"stranger\" value=\"1\">", "Not them: back to strangers", "secondary", None),
            form(&format!("/ui/photos/{}/remove", p.id), csrf, "", "Remove photo", "danger", Some("Remove this photo?")),
        );
    }
    let body = format!(
        "{}<p>{} photo(s).</p><div class=\"grid\">{cards}</div><h2>Add photos</h2>{}<h2>Rename</h2>{}<h2>Remove</h2>{}{}",
        notice(&q),
        photos.len(),
        add_photos_form(&session, Some(&name)),
        form(&format!("/ui/people/{}/rename", url(&name)), csrf, &text_input("new", "New name", &name, None), "Rename", "secondary", None),
        form(
            &format!("/ui/people/{}/remove", url(&name)),
            csrf,
            "",
            &format!("Remove {name} and every photo"),
            "danger",
            Some("Remove this person and all their photos?")
        ),
        people_list(&names)
    );
    view(&name, "/ui/people", &session, &body)
}

/// Adds the uploaded photos to a person (one face each), as `POST /api/faces/{name}` does.
pub(super) async fn add_photos(State(shared): State<Arc<Shared>>, Extension(session): Extension<UiSession>, request: Request) -> Response {
    let (fields, files) = match upload_form(&shared, &session, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let name = fields.get("name").map(|n| n.trim().to_string()).unwrap_or_default();
    if let Err(e) = crate::gallery::check_name(&name) {
        return failed(Failure::from(e), "/ui/people", &session);
    }
    let n = name.clone();
    let outcome = with_work(&shared, move |engine, gallery| {
        use sha2::Digest;
        let mut lines = Vec::new();
        let mut added = 0usize;
        for (_, file, bytes) in files {
            let hash = crate::model::hex(&sha2::Sha256::digest(&bytes));
            let owners: Vec<String> = gallery.owners_of(&hash)?.into_iter().filter(|o| *o != n).collect();
            if !owners.is_empty() {
                lines.push(format!("{file}: already enrolled as {}", owners.join(", ")));
                continue;
            }
            match crate::jobs::enroll::embed_photo(engine, std::path::Path::new(&format!("ui:{file}")), &bytes, hash) {
                Ok(item) => added += gallery.enroll(&n, &[item])?,
                Err(e) => lines.push(format!("{file}: {e}")),
            }
        }
        Ok((added, lines))
    })
    .await;
    match outcome {
        Ok((added, problems)) => {
            let mut what = format!("{added} photo(s) added to {name}.");
            for p in problems {
                what.push(' ');
                what.push_str(&p);
                what.push('.');
            }
            done(&format!("/ui/people/{}", url(&name)), &what)
        }
        Err(f) => failed(f, "/ui/people", &session),
    }
}

pub(super) async fn rename(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(name): UrlPath<String>,
    request: Request,
) -> Response {
    let fields = match super::form(&shared, &session, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let new = fields.get("new").map(|n| n.trim().to_string()).unwrap_or_default();
    let (old, to) = (name.clone(), new.clone());
    match with_work(&shared, move |_, gallery| Ok(gallery.rename(&old, &to)?)).await {
        Ok(()) => done(&format!("/ui/people/{}", url(&new)), &format!("{name} is now {new}.")),
        Err(f) => failed(f, "/ui/people", &session),
    }
}

pub(super) async fn remove_person(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(name): UrlPath<String>,
    request: Request,
) -> Response {
    if let Err(r) = super::form(&shared, &session, request).await {
        return r;
    }
    let n = name.clone();
    match with_work(&shared, move |_, gallery| Ok(gallery.remove(&n)?)).await {
        Ok(k) => done("/ui/people", &format!("{name} and {k} photo(s) removed.")),
        Err(f) => failed(f, "/ui/people", &session),
    }
}

pub(super) async fn remove_photo(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(id): UrlPath<i64>,
    request: Request,
) -> Response {
    if let Err(r) = super::form(&shared, &session, request).await {
        return r;
    }
    match with_work(&shared, move |_, gallery| Ok(gallery.remove_photo(id)?)).await {
        Ok(r) if r.person_removed => done("/ui/people", &format!("Photo {id} removed; {} had no other photo and was removed.", r.name)),
        Ok(r) => done(&format!("/ui/people/{}", url(&r.name)), &format!("Photo {id} removed.")),
        Err(f) => failed(f, "/ui/people", &session),
    }
}

/// "This face was not X": to the person named, or back among the strangers.
pub(super) async fn move_photo(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(id): UrlPath<i64>,
    request: Request,
) -> Response {
    let fields = match super::form(&shared, &session, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let target = match (fields.get("to").map(|t| t.trim()).filter(|t| !t.is_empty()), fields.get("stranger")) {
        (Some(to), _) => FaceTarget::Person(to.to_string()),
        (None, Some(_)) => FaceTarget::Stranger,
        (None, None) => return failed(Failure(StatusCode::BAD_REQUEST, "say whose face it is".into()), "/ui/people", &session),
    };
    match with_work(&shared, move |_, gallery| Ok(gallery.move_face(id, &target)?)).await {
        Ok(m) => {
            let back = if m.person_removed { "/ui/people".to_string() } else { format!("/ui/people/{}", url(&m.from)) };
            done(&back, &format!("Photo {id} moved from {} to {}.", m.from, m.to))
        }
        Err(f) => failed(f, "/ui/people", &session),
    }
}

/// The form that names a stranger.
fn name_form(session: &UiSession, label: &str) -> String {
    form(&format!("/ui/strangers/{}/name", url(label)), &session.csrf, &text_input("name", "This is", "", Some("people")), "Name", "", None)
}

/// Strangers: each with their best face, when and where seen, and a form to name them.
pub(super) async fn strangers(State(shared): State<Arc<Shared>>, Extension(session): Extension<UiSession>, Query(q): Q) -> Response {
    let found = with_work(&shared, |_, gallery| {
        Ok((gallery.store().strangers()?, gallery.persons()?.into_iter().map(|p| p.name).collect::<Vec<_>>()))
    })
    .await;
    let (strangers, names) = match found {
        Ok(x) => x,
        Err(f) => return failed(f, "/ui/strangers", &session),
    };
    let mut cards = String::new();
    for s in &strangers {
        let faces: String = s
            .faces
            .iter()
            .take(3)
            .map(|f| format!("<img src=\"/ui/img/stranger/{}\" alt=\"A face of {}\">", f.id, esc(&s.label)))
            .collect();
        let _ = write!(
            cards,
            "<section class=\"card stranger\" data-label=\"{}\"><h2><a href=\"/ui/strangers/{}\">{}</a></h2><div class=\"faces\">{faces}</div>\
             <p class=\"muted\">Seen {} time(s) on {}; first {}, last {}.</p>{}</section>",
            esc(&s.label),
            url(&s.label),
            esc(&s.label),
            s.sightings,
            esc(&s.cameras.join(", ")),
            esc(&when(s.first_seen)),
            esc(&when(s.last_seen)),
            name_form(&session, &s.label)
        );
    }
    let empty = match strangers.is_empty() {
        true => "<p class=\"muted\">No stranger yet: faces that match nobody enrolled appear here once seen well enough.</p>",
        false => "",
    };
    let body = format!(
        "{}<p>{} stranger(s), most recently seen first. Naming one enrolls their faces under that name: the next time they \
         come (or right away, when in view), the daemon says the name.</p>{empty}<div class=\"grid\">{cards}</div>{}",
        notice(&q),
        strangers.len(),
        people_list(&names)
    );
    view("Strangers", "/ui/strangers", &session, &body)
}

/// One stranger: every face with its scene; name, merge, forget.
pub(super) async fn stranger(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(label): UrlPath<String>,
    Query(q): Q,
) -> Response {
    let found = with_work(&shared, |_, gallery| {
        Ok((gallery.store().strangers()?, gallery.persons()?.into_iter().map(|p| p.name).collect::<Vec<_>>()))
    })
    .await;
    let (all, names) = match found {
        Ok(x) => x,
        Err(f) => return failed(f, "/ui/strangers", &session),
    };
    let Some(s) = all.iter().find(|s| s.label == label) else {
        return failed(Failure::from(GalleryError::UnknownStranger(label)), "/ui/strangers", &session);
    };
    let faces: String = s
        .faces
        .iter()
        .map(|f| {
            format!(
                "<div class=\"card\"><img class=\"face\" src=\"/ui/img/stranger/{}\" alt=\"Face {}\"><img class=\"scene\" src=\"/ui/img/stranger/{}?scene=1\" alt=\"Face {} with the scene\">\
                 <p class=\"muted\">quality {:.2} · {} · {}</p></div>",
                f.id,
                f.id,
                f.id,
                f.id,
                f.quality,
                esc(&f.camera),
                esc(&when(f.seen_at))
            )
        })
        .collect();
    let others: String = all
        .iter()
        .filter(|o| o.label != s.label)
        .map(|o| format!("<option value=\"{}\">{}</option>", esc(&o.label), esc(&o.label)))
        .collect();
    let merge = match others.is_empty() {
        true => "<p class=\"muted\">No other stranger to merge with.</p>".to_string(),
        false => form(
            &format!("/ui/strangers/{}/merge", url(&s.label)),
            &session.csrf,
            &format!("<label for=\"from\">The same person as</label><select id=\"from\" name=\"from\">{others}</select>"),
            "Merge into this one",
            "secondary",
            None,
        ),
    };
    let body = format!(
        "{}<p>Seen {} time(s) on {}; first {}, last {}.</p><div class=\"grid\">{faces}</div><h2>Name</h2>{}<h2>Merge</h2>{merge}<h2>Forget</h2>{}{}",
        notice(&q),
        s.sightings,
        esc(&s.cameras.join(", ")),
        esc(&when(s.first_seen)),
        esc(&when(s.last_seen)),
        name_form(&session, &s.label),
        form(&format!("/ui/strangers/{}/forget", url(&s.label)), &session.csrf, "", "Forget this stranger", "danger", Some("Forget this stranger and their faces?")),
        people_list(&names)
    );
    view(&s.label, "/ui/strangers", &session, &body)
}

pub(super) async fn name_stranger(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(label): UrlPath<String>,
    request: Request,
) -> Response {
    let fields = match super::form(&shared, &session, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let name = fields.get("name").map(|n| n.trim().to_string()).unwrap_or_default();
    if !is_label(&label) {
        return failed(Failure::from(GalleryError::UnknownStranger(label)), "/ui/strangers", &session);
    }
    let (l, n) = (label.clone(), name.clone());
    match with_work(&shared, move |_, gallery| Ok(gallery.stranger_name(&l, &n)?)).await {
        Ok(k) => done("/ui/strangers", &format!("{label} is now {name}: {k} photo(s) enrolled from their faces.")),
        Err(f) => failed(f, "/ui/strangers", &session),
    }
}

pub(super) async fn merge_stranger(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(label): UrlPath<String>,
    request: Request,
) -> Response {
    let fields = match super::form(&shared, &session, request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let from = fields.get("from").cloned().unwrap_or_default();
    let (into, f) = (label.clone(), from.clone());
    match with_work(&shared, move |_, gallery| Ok(gallery.stranger_merge(&into, &f)?)).await {
        Ok(k) => done(&format!("/ui/strangers/{}", url(&label)), &format!("{from} merged into {label} ({k} face(s)).")),
        Err(f) => failed(f, "/ui/strangers", &session),
    }
}

pub(super) async fn forget_stranger(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<UiSession>,
    UrlPath(label): UrlPath<String>,
    request: Request,
) -> Response {
    if let Err(r) = super::form(&shared, &session, request).await {
        return r;
    }
    let l = label.clone();
    match with_work(&shared, move |_, gallery| Ok(gallery.stranger_forget(&l)?)).await {
        Ok(k) => done("/ui/strangers", &format!("{label} forgotten ({k} face(s)).")),
        Err(f) => failed(f, "/ui/strangers", &session),
    }
}

fn check_form(session: &UiSession) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/ui/check\" enctype=\"multipart/form-data\">{}\
         <label for=\"photo\">Photo</label><input type=\"file\" id=\"photo\" name=\"photo\" accept=\"image/*\" required>\
         <button type=\"submit\">Check</button></form>",
        super::html::token(&session.csrf)
    )
}

/// Check a photo: the upload form.
pub(super) async fn check_page(Extension(session): Extension<UiSession>) -> Response {
    let body = format!(
        "<p>Every face of the photo against the gallery: its name or unknown, the score and the margin.</p>{}",
        check_form(&session)
    );
    view("Check a photo", "/ui/check", &session, &body)
}

/// Base64 of `bytes` (a face picture inside the page).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Check a photo: every face, named or unknown, with its score and margin.
pub(super) async fn check(State(shared): State<Arc<Shared>>, Extension(session): Extension<UiSession>, request: Request) -> Response {
    let (_, files) = match upload_form(&shared, &session, request).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some((_, file, bytes)) = files.into_iter().next() else {
        return failed(Failure(StatusCode::BAD_REQUEST, "choose a photo".into()), "/ui/check", &session);
    };
    let k = shared.top_k;
    let outcome = with_work(&shared, move |engine, gallery| {
        let frame = engine.decode(&bytes, std::path::Path::new(&file)).map_err(|e| Failure::from(crate::stills::EngineError::from(e)))?;
        let faces = crate::jobs::photos::identify_frame(engine, gallery, &frame, k)?;
        let crops: Vec<Option<String>> = faces
            .iter()
            .map(|f| {
                use opencv::core::{Mat, MatTraitConst, Rect};
                let s = frame.scale;
                let (w, h) = (frame.bgr.cols(), frame.bgr.rows());
                let x0 = ((f.bbox.x * s).max(0.0)) as i32;
                let y0 = ((f.bbox.y * s).max(0.0)) as i32;
                let x1 = (((f.bbox.x + f.bbox.w) * s) as i32).min(w);
                let y1 = (((f.bbox.y + f.bbox.h) * s) as i32).min(h);
                let roi = Mat::roi(&frame.bgr, Rect::new(x0, y0, (x1 - x0).max(1), (y1 - y0).max(1))).ok()?;
                let roi = roi.try_clone().ok()?;
                crate::image::encode_jpeg(&roi, 85).ok().map(|j| base64(&j))
            })
            .collect();
        Ok((faces, crops, frame.original_width, frame.original_height))
    })
    .await;
    let (faces, crops, w, h) = match outcome {
        Ok(x) => x,
        Err(f) => return failed(f, "/ui/check", &session),
    };
    let mut rows = String::new();
    for (f, crop) in faces.iter().zip(crops) {
        let img = crop.map_or_else(String::new, |c| format!("<img class=\"face\" src=\"data:image/jpeg;base64,{c}\" alt=\"A face\">"));
        let class = if f.known { "known" } else { "unknown" };
        let best = f.candidates.first().map_or_else(|| "—".into(), |c| format!("{} ({:.3})", esc(&c.name), c.score));
        let _ = write!(
            rows,
            "<tr><td>{img}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{best}</td></tr>",
            esc(&f.name),
            f.score.map_or_else(|| "—".into(), |s| format!("{s:.3}")),
            f.margin.map_or_else(|| "—".into(), |m| format!("{m:.3}")),
        );
    }
    let body = format!(
        "<p>{} face(s) in the {w}×{h} photo.</p><table><thead><tr><th>Face</th><th>Who</th><th>Score</th><th>Margin</th><th>Best candidate</th></tr></thead>\
         <tbody>{rows}</tbody></table><h2>Another photo</h2>{}",
        faces.len(),
        check_form(&session)
    );
    view("Check a photo", "/ui/check", &session, &body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_is_the_standard_alphabet_with_padding() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
