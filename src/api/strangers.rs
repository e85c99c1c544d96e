//! The strangers over HTTP (`/api/strangers…`), and a photo given to the wrong person moved where it belongs
//! (`/api/faces/{name}/photos/{id}/move`): what `facewatch strangers` and `gallery move-photo` do, with a key.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{read_body, with_work, Doc, Failure, Shared};
use crate::gallery::strangers::{is_label, FaceTarget, StoredStranger};
use crate::gallery::GalleryError;
use crate::jobs::REPORT_VERSION;

/// A stranger label from the URL, refused when it is none (so nothing else reaches the store).
fn label_of(label: &str) -> Result<(), Failure> {
    match is_label(label) {
        true => Ok(()),
        false => Err(Failure(StatusCode::NOT_FOUND, format!("`{label}` is no stranger label (stranger-…)"))),
    }
}

/// A JSON body of type `T`, read within the API's limits.
async fn json_body<T: for<'de> Deserialize<'de>>(shared: &Shared, request: axum::extract::Request) -> Result<T, Failure> {
    let (_, bytes) = read_body(request, shared.max_upload, shared.body_timeout).await?;
    serde_json::from_slice(&bytes).map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("the body is not the JSON this route takes: {e}")))
}

/// `GET /api/strangers`: every stranger, most recently seen first.
pub(super) async fn list(State(shared): State<Arc<Shared>>) -> Result<Json<serde_json::Value>, Failure> {
    let strangers = with_work(&shared, |_, gallery| Ok(gallery.store().strangers()?)).await?;
    Ok(Json(json!({"v": REPORT_VERSION, "strangers": strangers})))
}

/// One stranger, or 404.
async fn find(shared: &Arc<Shared>, label: String) -> Result<StoredStranger, Failure> {
    label_of(&label)?;
    with_work(shared, move |_, gallery| {
        let found = gallery.store().strangers()?.into_iter().find(|s| s.label == label);
        found.ok_or_else(|| GalleryError::UnknownStranger(label).into())
    })
    .await
}

/// `GET /api/strangers/{label}`.
pub(super) async fn show(State(shared): State<Arc<Shared>>, UrlPath(label): UrlPath<String>) -> Result<Json<Doc<StoredStranger>>, Failure> {
    Ok(Json(Doc::new(find(&shared, label).await?)))
}

/// `?scene=true`: the face with the scene around it instead of its aligned crop.
#[derive(Deserialize)]
pub(super) struct Scene {
    #[serde(default)]
    scene: bool,
}

/// `GET /api/strangers/{label}/faces/{id}`: a face's picture (JPEG).
pub(super) async fn face(
    State(shared): State<Arc<Shared>>,
    UrlPath((label, id)): UrlPath<(String, String)>,
    Query(q): Query<Scene>,
) -> Result<Response, Failure> {
    let id: i64 = id.parse().map_err(|_| Failure(StatusCode::BAD_REQUEST, format!("face id `{id}` is not an integer id")))?;
    let stranger = find(&shared, label).await?;
    if !stranger.faces.iter().any(|f| f.id == id) {
        return Err(Failure(StatusCode::NOT_FOUND, format!("{} has no face {id}", stranger.label)));
    }
    let jpeg = with_work(&shared, move |_, gallery| Ok(gallery.store().stranger_face_image(id, q.scene)?)).await?;
    let jpeg = jpeg.ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("face {id} has no such picture")))?;
    Ok(jpeg_response(jpeg))
}

/// A JPEG answer, kept by no cache (faces are biometric data).
pub(super) fn jpeg_response(jpeg: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-store")], jpeg).into_response()
}

/// `{"name": …}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

/// `POST /api/strangers/{label}/name`: their faces become the person's photos.
pub(super) async fn name(
    State(shared): State<Arc<Shared>>,
    UrlPath(label): UrlPath<String>,
    request: axum::extract::Request,
) -> Result<Json<serde_json::Value>, Failure> {
    label_of(&label)?;
    let body: NameBody = json_body(&shared, request).await?;
    let (l, n) = (label.clone(), body.name.clone());
    let photos = with_work(&shared, move |_, gallery| Ok(gallery.stranger_name(&l, &n)?)).await?;
    Ok(Json(json!({"v": REPORT_VERSION, "stranger": label, "name": body.name, "photos": photos})))
}

/// `{"from": "stranger-…"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    from: String,
}

/// `POST /api/strangers/{label}/merge`: `from` is the same person; their faces and sightings come here.
pub(super) async fn merge(
    State(shared): State<Arc<Shared>>,
    UrlPath(label): UrlPath<String>,
    request: axum::extract::Request,
) -> Result<Json<serde_json::Value>, Failure> {
    label_of(&label)?;
    let body: MergeBody = json_body(&shared, request).await?;
    label_of(&body.from)?;
    let (into, from) = (label.clone(), body.from.clone());
    let faces = with_work(&shared, move |_, gallery| Ok(gallery.stranger_merge(&into, &from)?)).await?;
    Ok(Json(json!({"v": REPORT_VERSION, "into": label, "from": body.from, "faces": faces})))
}

/// `DELETE /api/strangers/{label}`: forgotten, with their faces.
pub(super) async fn forget(State(shared): State<Arc<Shared>>, UrlPath(label): UrlPath<String>) -> Result<Json<serde_json::Value>, Failure> {
    label_of(&label)?;
    let l = label.clone();
    let faces = with_work(&shared, move |_, gallery| Ok(gallery.stranger_forget(&l)?)).await?;
    Ok(Json(json!({"v": REPORT_VERSION, "stranger": label, "faces": faces})))
}

/// `{"to": "Name"}` or `{"stranger": true}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    stranger: bool,
}

/// `POST /api/faces/{name}/photos/{id}/move`: "this face was not NAME": to the right person, or back among the
/// strangers.
pub(super) async fn move_photo(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, id)): UrlPath<(String, String)>,
    request: axum::extract::Request,
) -> Result<Json<Doc<crate::gallery::strangers::MovedFace>>, Failure> {
    let id: i64 = id.parse().map_err(|_| Failure(StatusCode::BAD_REQUEST, format!("photo id `{id}` is not an integer id")))?;
    let body: MoveBody = json_body(&shared, request).await?;
    let target = match (body.to, body.stranger) {
        (Some(to), false) => FaceTarget::Person(to),
        (None, true) => FaceTarget::Stranger,
        _ => return Err(Failure(StatusCode::BAD_REQUEST, "say where the face goes: {\"to\": NAME} or {\"stranger\": true}".into())),
    };
    let moved = with_work(&shared, move |_, gallery| {
        // The photo must be this person's: a URL naming someone else's photo moves nothing.
        if !gallery.photos(&name)?.iter().any(|p| p.id == id) {
            return Err(GalleryError::UnknownPhoto(id).into());
        }
        Ok(gallery.move_face(id, &target)?)
    })
    .await?;
    Ok(Json(Doc::new(moved)))
}

/// `GET /api/faces/{name}/photos/{id}/crop`: the face crop kept with a photo (JPEG).
pub(super) async fn photo_crop(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Result<Response, Failure> {
    let id: i64 = id.parse().map_err(|_| Failure(StatusCode::BAD_REQUEST, format!("photo id `{id}` is not an integer id")))?;
    let jpeg = with_work(&shared, move |_, gallery| {
        if !gallery.photos(&name)?.iter().any(|p| p.id == id) {
            return Err(GalleryError::UnknownPhoto(id).into());
        }
        Ok(gallery.store().photo_crop(id)?)
    })
    .await?;
    let jpeg =
        jpeg.ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("photo {id} kept no face crop (enrolled before crops were kept)")))?;
    Ok(jpeg_response(jpeg))
}
