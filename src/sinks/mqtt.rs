//! MQTT: the events, per-person presence, the last recognized face, the number of faces in view and the daemon's
//! availability on a broker, with Home Assistant MQTT discovery.
//!
//! Topics (base `<topic_prefix>/<node_id>`, so that several facewatch hosts share one broker without colliding):
//!
//! | topic | retained | payload |
//! |---|---|---|
//! | `<base>/availability` | yes | `online`; `offline` on a clean stop, and as the broker's last will |
//! | `<base>/<camera>/events` | no | every event, the JSON line of the socket |
//! | `<base>/<camera>/unknown` | no | the event of a face found unknown (a new track, or a track that became unknown) |
//! | `<base>/<camera>/last_recognized` | yes | `{"name", "score", "track_id", "ts"}` of the latest face recognized |
//! | `<base>/<camera>/last_unknown` | yes | `{"label", "stranger", "score", "track_id", "ts"}` of the latest face no enrolled person matches: `label` is its stranger (`stranger-…`, `[strangers]`) or `unknown` |
//! | `<base>/<camera>/last_face` | yes | the latest decision's face (known or not) as a JPEG |
//! | `<base>/<camera>/faces` | yes | how many faces are in view (live tracks, known or not) |
//! | `<base>/<camera>/person/<slug>` | yes | `ON` while the person is seen and for `presence_timeout_s` after, then `OFF` |
//! | `<base>/<camera>/person/<slug>/attributes` | yes | `{"name", "score", "track_id", "last_seen"}`: at arrival, every `presence_refresh_s` while the person is in view (`last_seen` now), and at departure |
//!
//! Discovery (`discovery = true`): per camera a device `facewatch <node_id> <camera>` with a presence
//! `binary_sensor` per enrolled person, a `last recognized` sensor, a `last unknown` sensor (the stranger's id, or
//! `unknown`), a `faces` sensor and a `last face` image, all unavailable when the daemon is. At every connection the daemon reads the retained discovery of its node and removes (empty retained
//! payload) the entities of people no longer enrolled.
//!
//! Nothing here can stall the pipeline: [`MqttSink::publish`] puts the event on a bounded queue (`queue`) and
//! returns; a worker thread keeps the presence state and hands messages to the client without waiting
//! (`try_publish`), and the client's own thread talks to the broker, reconnecting with backoff. What a full queue or
//! a broker that is down refuses is counted and logged, never waited for; on reconnection the retained state is
//! published again whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use rumqttc::{Client, Connection, LastWill, MqttOptions, QoS};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::EventSink;
use crate::base::units::{seconds, within};
use crate::base::TrackId;
use crate::base::{Event, EventBody, TrackFace};

/// Environment variable holding the broker password (wins over `mqtt.password_file` and `mqtt.password`).
pub const PASSWORD_ENV: &str = "FACEWATCH_MQTT_PASSWORD";

/// A secret from the configuration: shown as `***` by `Debug` and when the configuration is printed.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

/// `[mqtt]`: the broker, and what is published there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host; empty: no MQTT.
    pub host: String,
    /// Broker port (1883; 8883 is usual with TLS).
    pub port: u16,
    /// This daemon's id in topics and unique ids; empty: the host name.
    pub node_id: String,
    /// First topic level.
    pub topic_prefix: String,
    /// User name; empty: none.
    pub username: String,
    /// Password (prefer `password_file` or `FACEWATCH_MQTT_PASSWORD`: a configuration file is often readable).
    pub password: Secret,
    /// A file holding the password (owner-only), read at start-up.
    pub password_file: String,
    /// TLS to the broker.
    pub tls: bool,
    /// CA certificate (PEM) for TLS; empty: the system's roots.
    pub ca_file: String,
    /// MQTT keep-alive (`keep_alive_s`).
    #[serde(rename = "keep_alive_s", with = "seconds")]
    pub keep_alive: Duration,
    /// Messages waiting for the broker; beyond, new ones are dropped and counted.
    pub queue: NonZeroUsize,
    /// A person stays present this long after their last sighting (`presence_timeout_s`).
    #[serde(rename = "presence_timeout_s", with = "seconds")]
    pub presence_timeout: Duration,
    /// A person in view has their attributes (`last_seen`) published again this often (`presence_refresh_s`); 0:
    /// only at arrival and departure.
    #[serde(rename = "presence_refresh_s", with = "seconds")]
    pub presence_refresh: Duration,
    /// Home Assistant MQTT discovery.
    pub discovery: bool,
    /// Discovery topic prefix.
    pub discovery_prefix: String,
    /// Longest wait between reconnection attempts (`reconnect_max_s`).
    #[serde(rename = "reconnect_max_s", with = "seconds")]
    pub reconnect_max: Duration,
}

impl MqttConfig {
    /// Whether a broker is configured.
    pub fn enabled(&self) -> bool {
        !self.host.trim().is_empty()
    }

    /// What is wrong with `[mqtt]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if !self.enabled() {
            return;
        }
        let topic_safe = |s: &str| !s.is_empty() && !s.contains(['+', '#', '/', '\0']);
        if !topic_safe(&self.topic_prefix) {
            out.push(format!("mqtt.topic_prefix: `{}` must be one topic level, without + # or /", self.topic_prefix));
        }
        if !topic_safe(&self.discovery_prefix) {
            out.push(format!("mqtt.discovery_prefix: `{}` must be one topic level, without + # or /", self.discovery_prefix));
        }
        if !self.node_id.is_empty() && !self.node_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            out.push(format!("mqtt.node_id: `{}` may hold only letters, digits, _ and - (Home Assistant's rule)", self.node_id));
        }
        if self.port == 0 {
            out.push("mqtt.port: 0 is no port".into());
        }
        within(out, "mqtt.queue", self.queue.get() as u64, 1_000_000, "messages");
        within(out, "mqtt.keep_alive_s", self.keep_alive.as_secs(), 65_535, "MQTT's limit");
        if self.keep_alive < Duration::from_secs(5) {
            out.push("mqtt.keep_alive_s: at least 5".into());
        }
        within(out, "mqtt.presence_timeout_s", self.presence_timeout.as_secs(), 86_400, "one day");
        within(out, "mqtt.presence_refresh_s", self.presence_refresh.as_secs(), 86_400, "one day");
        if !self.presence_refresh.is_zero() && self.presence_refresh < Duration::from_secs(1) {
            out.push("mqtt.presence_refresh_s: at least 1 (0: only at arrival and departure)".into());
        }
        within(out, "mqtt.reconnect_max_s", self.reconnect_max.as_secs(), 3_600, "one hour");
        if self.reconnect_max < Duration::from_secs(1) {
            out.push("mqtt.reconnect_max_s: at least 1".into());
        }
        if !self.password_file.is_empty() && !self.password.expose().is_empty() {
            out.push("mqtt.password and mqtt.password_file: set one of them".into());
        }
    }

    /// The node id in force: `node_id`, else the host name made safe for topics and Home Assistant ids.
    pub fn node(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "facewatch".into());
        slug(host.trim())
    }
}

/// Errors starting the MQTT client.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The password file could not be read, or others may read it.
    #[error("mqtt.password_file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::private::SecretFileError,
    },
    /// The CA file could not be read.
    #[error("mqtt.ca_file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS set-up failed.
    #[error("mqtt TLS: {0}")]
    Tls(String),
    /// A thread could not be started.
    #[error("failed to start the MQTT thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl crate::exit::Exit for MqttError {
    fn exit_code(&self) -> u8 {
        crate::exit::CONFIG
    }
}

/// A name as one topic level and a Home Assistant id: ASCII letters, digits, `_` and `-` are kept as they are, any
/// other character becomes `_`, runs of `_` become one and none starts or ends it; a name that had to change gets
/// a short hash of itself, so that two names (`Ann B` and `Ann_B`, `José` and `Jos_`) never share a slug and one
/// person never takes another's entity. A slug never holds `__`, which therefore separates a camera from a
/// person in an entity id unambiguously ([`entity_object`]).
pub fn slug(name: &str) -> String {
    let kept = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut s = String::with_capacity(name.len() + 7);
    for c in name.chars().map(|c| if kept(c) { c } else { '_' }) {
        if !(c == '_' && (s.is_empty() || s.ends_with('_'))) {
            s.push(c);
        }
    }
    while s.ends_with('_') {
        s.pop();
    }
    if s != name || s.is_empty() {
        use sha2::Digest;
        let h = sha2::Sha256::digest(name.as_bytes());
        if !s.is_empty() {
            s.push('_');
        }
        s.push_str(&crate::model::hex(&h[..3]));
    }
    s
}

/// The object id of a person's presence entity at a camera: `<camera slug>__<person slug>`. Slugs hold no `__`,
/// so cameras `stage` and `stage_left` never share an id (`stage__left_alex` vs `stage_left__alex`).
pub fn entity_object(camera: &str, name: &str) -> String {
    format!("{}__{}", slug(camera), slug(name))
}

/// The password in force: the environment, else the file, else the configuration.
fn password(cfg: &MqttConfig) -> Result<Option<String>, MqttError> {
    let found = crate::private::secret_from(
        PASSWORD_ENV,
        (!cfg.password_file.is_empty()).then(|| crate::paths::resolve_path(&cfg.password_file)).as_deref(),
    )
    .map_err(|(path, source)| MqttError::PasswordFile { path, source })?;
    Ok(found.or_else(|| (!cfg.password.expose().is_empty()).then(|| cfg.password.expose().to_string())))
}

/// What the network thread tells the worker.
enum Notice {
    /// Connected (again): publish the whole retained state.
    Connected,
    /// A retained discovery configuration of this node, seen on the broker: its topic and payload.
    Discovered(String, Vec<u8>),
    /// The connection was lost (reconnection under way).
    Disconnected,
}

/// Publishes events to an MQTT broker ([module docs](self)).
pub struct MqttSink {
    tx: Option<Sender<(Event, Arc<str>)>>,
    dropped: Arc<AtomicU64>,
    connected: Arc<std::sync::atomic::AtomicBool>,
    worker: Option<std::thread::JoinHandle<()>>,
}

/// Topics of one node.
#[derive(Clone)]
struct Topics {
    base: String,
    discovery: Option<String>,
    node: String,
}

impl Topics {
    fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }
    fn camera(&self, camera: &str, leaf: &str) -> String {
        format!("{}/{}/{leaf}", self.base, slug(camera))
    }
    fn person(&self, camera: &str, name: &str) -> String {
        format!("{}/{}/person/{}", self.base, slug(camera), slug(name))
    }
    /// Discovery config topic of an entity: `<prefix>/<component>/facewatch_<node>/<object>/config`.
    fn config(&self, component: &str, object: &str) -> Option<String> {
        self.discovery.as_ref().map(|p| format!("{p}/{component}/facewatch_{}/{object}/config", self.node))
    }
}

impl MqttSink {
    /// Connects (in the background) to the broker of `cfg` for the cameras `cameras`, announcing the enrolled
    /// `people` to Home Assistant. Fails only on a configuration that cannot work (a password file others may read,
    /// a CA file that is not there); a broker that is down is retried, not an error.
    pub fn start(cfg: &MqttConfig, cameras: &[String], people: &[String]) -> Result<Self, MqttError> {
        let node = cfg.node();
        let topics = Topics {
            base: format!("{}/{node}", cfg.topic_prefix),
            discovery: cfg.discovery.then(|| cfg.discovery_prefix.clone()),
            node: node.clone(),
        };
        let client_id = format!("facewatch-{node}");
        let mut options = MqttOptions::new(client_id.clone(), cfg.host.trim(), cfg.port);
        options.set_keep_alive(cfg.keep_alive).set_clean_session(true);
        options.set_last_will(LastWill::new(topics.availability(), "offline", QoS::AtLeastOnce, true));
        if !cfg.username.is_empty() {
            options.set_credentials(cfg.username.clone(), password(cfg)?.unwrap_or_default());
        }
        if cfg.tls {
            options.set_transport(rumqttc::Transport::tls_with_config(tls_config(cfg)?));
        }
        let (client, connection) = Client::new(options, cfg.queue.get());
        let (notice_tx, notice_rx) = crossbeam_channel::unbounded();
        let address = format!("{}:{}", cfg.host.trim(), cfg.port);
        let discovery_filter = topics.config("+", "+");
        let reconnect_max = cfg.reconnect_max;
        let net_client = client.clone();
        let net = crate::stage::thread("mqtt-net", move || {
            network(connection, net_client, client_id, notice_tx, address, discovery_filter, reconnect_max)
        })
        .map_err(MqttError::Thread)?;
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue.get());
        let dropped = Arc::new(AtomicU64::new(0));
        let connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = Worker {
            link: connected.clone(),
            client,
            topics,
            cameras: cameras.to_vec(),
            people: people.iter().cloned().collect(),
            timeout: cfg.presence_timeout,
            refresh: cfg.presence_refresh,
            present: BTreeMap::new(),
            tracks: HashMap::new(),
            faces: BTreeMap::new(),
            last: BTreeMap::new(),
            last_unknown: BTreeMap::new(),
            last_face: BTreeMap::new(),
            dropped: dropped.clone(),
            connected: false,
            net: Some(net),
        };
        let worker = crate::stage::thread("mqtt", move || worker.run(rx, notice_rx)).map_err(MqttError::Thread)?;
        Ok(Self { tx: Some(tx), dropped, connected, worker: Some(worker) })
    }

    /// Messages dropped so far (queue full, or the broker away).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl EventSink for MqttSink {
    fn publish(&mut self, event: &Event, line: &Arc<str>) {
        if let Some(tx) = &self.tx {
            if tx.try_send((event.clone(), line.clone())).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn observe(&self, outputs: &crate::metrics::OutputStats) {
        outputs.mqtt.store(true, Ordering::Relaxed);
        outputs.mqtt_connected.store(self.connected.load(Ordering::Relaxed), Ordering::Relaxed);
        outputs.set("mqtt", None, self.dropped());
    }

    fn close(&mut self) {
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        let dropped = self.dropped();
        if dropped > 0 {
            tracing::warn!(dropped, "MQTT messages were dropped (broker away or too slow).");
        }
    }
}

/// rustls with the system's roots (or the configured CA), on the ring provider.
fn tls_config(cfg: &MqttConfig) -> Result<rumqttc::TlsConfiguration, MqttError> {
    let config = crate::tls::client_config(&cfg.ca_file).map_err(|e| match e {
        crate::tls::TlsError::CaFile { path, source } => MqttError::CaFile { path, source },
        crate::tls::TlsError::Setup(m) => MqttError::Tls(m),
    })?;
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}

/// A connection closed this soon after the broker accepted it counts towards [`TAKEN_OVER_AFTER`].
const TAKEN_OVER_WITHIN: Duration = Duration::from_secs(5);
/// This many short-lived connections in a row are reported as another client with the same client id.
const TAKEN_OVER_AFTER: u32 = 3;

/// The client's network loop: connects, reconnects with backoff (1 s doubling to `reconnect_max`), tells the
/// worker when it is connected, and passes on the retained discovery configurations of this node; reports a
/// session taken over again and again (another client with this `client_id`).
fn network(
    mut connection: Connection,
    client: Client,
    client_id: String,
    notices: Sender<Notice>,
    address: String,
    discovery: Option<String>,
    reconnect_max: Duration,
) {
    use rumqttc::{ConnectionError, Event as NetEvent, Outgoing, Packet};
    let mut backoff = Duration::from_secs(1);
    let mut down_since: Option<Instant> = None;
    // Set once DISCONNECT has been handed to the connection: the goodbye (presence OFF, `offline`) may still sit in
    // its write buffer, which only the next poll flushes; returning at once would drop it, and the broker would
    // publish the last will instead. The broker then closes the connection, which ends the loop.
    let mut leaving = false;
    // Connections the broker closed within seconds of accepting them: the sign of another client with this
    // client id (two nodes given one node id), which the broker lets take the session over, back and forth.
    let mut connected_at: Option<Instant> = None;
    let mut cut_short = 0u32;
    for item in connection.iter() {
        match item {
            Ok(NetEvent::Incoming(Packet::ConnAck(_))) => {
                connected_at = Some(Instant::now());
                match down_since.take() {
                    Some(t) => {
                        tracing::info!(broker = %address, down_s = format!("{:.1}", t.elapsed().as_secs_f64()), "MQTT broker connected again.")
                    }
                    None => tracing::info!(broker = %address, "MQTT broker connected."),
                }
                backoff = Duration::from_secs(1);
                if let Some(filter) = &discovery {
                    let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                }
                if notices.send(Notice::Connected).is_err() {
                    return;
                }
            }
            Ok(NetEvent::Incoming(Packet::Publish(p))) if !p.payload.is_empty() => {
                let _ = notices.send(Notice::Discovered(p.topic, p.payload.to_vec()));
            }
            Ok(NetEvent::Outgoing(Outgoing::Disconnect)) => leaving = true,
            Ok(_) => {}
            Err(_) if leaving => return,
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                match connected_at.take().map(|t| t.elapsed()) {
                    Some(lived) if lived < TAKEN_OVER_WITHIN => {
                        cut_short += 1;
                        if cut_short == TAKEN_OVER_AFTER {
                            tracing::error!(
                                broker = %address,
                                client_id = %client_id,
                                times = cut_short,
                                "The MQTT broker keeps closing this connection within seconds of accepting it: another client \
                                 uses the same client id (two facewatch nodes with one mqtt.node_id, or one host name). \
                                 Give each node its own mqtt.node_id."
                            );
                        }
                    }
                    Some(_) => cut_short = 0,
                    None => {}
                }
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                    let _ = notices.send(Notice::Disconnected);
                    tracing::warn!(broker = %address, error = %e, "MQTT broker unreachable; retrying with backoff.");
                } else {
                    tracing::debug!(broker = %address, error = %e, retry_in_s = backoff.as_secs(), "MQTT reconnection failed.");
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(reconnect_max);
            }
        }
    }
}

/// One person at one camera.
#[derive(Debug, Default)]
struct Presence {
    live: BTreeSet<TrackId>,
    last_seen: Option<Instant>,
    on: bool,
    attributes: serde_json::Value,
    /// When the attributes were last published.
    published: Option<Instant>,
}

impl Presence {
    /// One of the person's tracks ended (or was found to be someone else's): seen until now, which the
    /// attributes say with the departure (OFF), or at the next refresh while another track goes on.
    fn track_left(&mut self, track: TrackId) {
        self.live.remove(&track);
        self.last_seen = Some(Instant::now());
        if self.attributes.is_object() {
            self.attributes["last_seen"] = json!(wall_now());
        }
    }
}

/// Keeps the state and publishes it.
struct Worker {
    client: Client,
    topics: Topics,
    cameras: Vec<String>,
    people: BTreeSet<String>,
    timeout: Duration,
    /// Attributes of a person in view are published again this often (zero: never).
    refresh: Duration,
    /// (camera, name) → presence.
    present: BTreeMap<(String, String), Presence>,
    /// (camera, track) → the name it has.
    tracks: HashMap<(String, TrackId), String>,
    /// camera → faces in view.
    faces: BTreeMap<String, usize>,
    /// camera → the last recognized face.
    last: BTreeMap<String, serde_json::Value>,
    /// camera → the last face no enrolled person matches.
    last_unknown: BTreeMap<String, serde_json::Value>,
    /// camera → the last decision's face, a JPEG.
    last_face: BTreeMap<String, Arc<[u8]>>,
    dropped: Arc<AtomicU64>,
    connected: bool,
    /// Whether the broker is connected now, for the metrics.
    link: Arc<std::sync::atomic::AtomicBool>,
    /// The network thread, waited for at the end so that the goodbye reaches the broker.
    net: Option<std::thread::JoinHandle<()>>,
}

/// The wall clock as the events give times: Unix seconds.
fn wall_now() -> f64 {
    crate::base::event::unix_seconds(std::time::SystemTime::now())
}

/// How long the end of the input waits for the goodbye (presence OFF, `offline`) to reach the broker.
const GOODBYE: Duration = Duration::from_secs(2);

impl Worker {
    fn run(mut self, events: Receiver<(Event, Arc<str>)>, notices: Receiver<Notice>) {
        let tick = crossbeam_channel::tick(Duration::from_millis(500));
        loop {
            select! {
                recv(events) -> e => match e {
                    Ok((e, line)) => self.event(&e, &line),
                    Err(_) => break,
                },
                recv(notices) -> n => match n {
                    Ok(Notice::Connected) => { self.connected = true; self.link.store(true, Ordering::Relaxed); self.announce(); }
                    Ok(Notice::Disconnected) => self.link.store(false, Ordering::Relaxed),
                    Ok(Notice::Discovered(topic, payload)) => self.forget_if_deleted(&topic, &payload),
                    Err(_) => {}
                },
                recv(tick) -> _ => { self.expire(); self.refresh(); },
            }
        }
        // Input over: everyone still present is away now, then a clean goodbye.
        let keys: Vec<(String, String)> = self.present.iter().filter(|(_, p)| p.on).map(|(k, _)| k.clone()).collect();
        for (camera, name) in keys {
            self.set_presence(&camera, &name, false);
        }
        self.send(self.topics.availability(), true, "offline");
        let _ = self.client.try_disconnect();
        if let Some(net) = self.net.take() {
            let until = Instant::now() + GOODBYE;
            while !net.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if net.is_finished() {
                let _ = net.join();
            } else {
                tracing::warn!("MQTT broker unreachable at shutdown; the last presence states were not delivered.");
            }
        }
    }

    /// Publishes without waiting; a full client queue counts a drop.
    fn send(&self, topic: String, retain: bool, payload: impl Into<Vec<u8>>) {
        if self.client.try_publish(topic, QoS::AtLeastOnce, retain, payload).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// At every connection: availability, discovery, and the whole retained state.
    fn announce(&mut self) {
        self.send(self.topics.availability(), true, "online");
        let cameras = self.cameras.clone();
        for camera in &cameras {
            self.discover_camera(camera);
            let people: Vec<String> = self.people.iter().cloned().collect();
            for name in &people {
                self.discover_person(camera, name);
                let presence = self.present.get(&(camera.clone(), name.clone()));
                let on = presence.is_some_and(|p| p.on);
                if let Some(p) = presence.filter(|p| !p.attributes.is_null()) {
                    self.send(format!("{}/attributes", self.topics.person(camera, name)), true, p.attributes.to_string());
                }
                self.send(self.topics.person(camera, name), true, if on { "ON" } else { "OFF" });
            }
            self.send(self.topics.camera(camera, "faces"), true, self.faces.get(camera).copied().unwrap_or(0).to_string());
            if let Some(last) = self.last.get(camera) {
                self.send(self.topics.camera(camera, "last_recognized"), true, last.to_string());
            }
            if let Some(last) = self.last_unknown.get(camera) {
                self.send(self.topics.camera(camera, "last_unknown"), true, last.to_string());
            }
            if let Some(jpeg) = self.last_face.get(camera) {
                self.send(self.topics.camera(camera, "last_face"), true, jpeg.to_vec());
            }
        }
    }

    fn device(&self, camera: &str) -> serde_json::Value {
        json!({
            "identifiers": [format!("facewatch_{}_{}", self.topics.node, slug(camera))],
            "name": format!("facewatch {} {camera}", self.topics.node),
            "manufacturer": "facewatch",
            "model": "face recognition",
            "sw_version": env!("CARGO_PKG_VERSION"),
        })
    }

    fn discover_camera(&self, camera: &str) {
        let cam = slug(camera);
        let last = format!("{cam}_last_recognized");
        if let Some(topic) = self.topics.config("sensor", &last) {
            let state = self.topics.camera(camera, "last_recognized");
            let config = json!({
                "name": "Last recognized",
                "unique_id": format!("facewatch_{}_{last}", self.topics.node),
                "state_topic": state,
                "value_template": "{{ value_json.name }}",
                "json_attributes_topic": state,
                "availability_topic": self.topics.availability(),
                "icon": "mdi:face-recognition",
                "device": self.device(camera),
            });
            self.send(topic, true, config.to_string());
        }
        let unknown = format!("{cam}_last_unknown");
        if let Some(topic) = self.topics.config("sensor", &unknown) {
            let state = self.topics.camera(camera, "last_unknown");
            let config = json!({
                "name": "Last unknown",
                "unique_id": format!("facewatch_{}_{unknown}", self.topics.node),
                "state_topic": state,
                "value_template": "{{ value_json.label }}",
                "json_attributes_topic": state,
                "availability_topic": self.topics.availability(),
                "icon": "mdi:account-question",
                "device": self.device(camera),
            });
            self.send(topic, true, config.to_string());
        }
        let face = format!("{cam}_last_face");
        if let Some(topic) = self.topics.config("image", &face) {
            let config = json!({
                "name": "Last face",
                "unique_id": format!("facewatch_{}_{face}", self.topics.node),
                "image_topic": self.topics.camera(camera, "last_face"),
                "content_type": "image/jpeg",
                "availability_topic": self.topics.availability(),
                "icon": "mdi:face-recognition",
                "device": self.device(camera),
            });
            self.send(topic, true, config.to_string());
        }
        let faces = format!("{cam}_faces");
        if let Some(topic) = self.topics.config("sensor", &faces) {
            let config = json!({
                "name": "Faces",
                "unique_id": format!("facewatch_{}_{faces}", self.topics.node),
                "state_topic": self.topics.camera(camera, "faces"),
                "state_class": "measurement",
                "unit_of_measurement": "faces",
                "availability_topic": self.topics.availability(),
                "icon": "mdi:account-group",
                "device": self.device(camera),
            });
            self.send(topic, true, config.to_string());
        }
    }

    fn discover_person(&self, camera: &str, name: &str) {
        let object = entity_object(camera, name);
        let Some(topic) = self.topics.config("binary_sensor", &object) else { return };
        let state = self.topics.person(camera, name);
        let config = json!({
            "name": name,
            "unique_id": format!("facewatch_{}_{object}", self.topics.node),
            "state_topic": state,
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "presence",
            "json_attributes_topic": format!("{state}/attributes"),
            "availability_topic": self.topics.availability(),
            "device": self.device(camera),
        });
        self.send(topic, true, config.to_string());
    }

    /// A retained presence entity of this node for a person no longer enrolled: removed (empty config), with its
    /// retained state. Which camera and person it is comes from what this daemon wrote in it, its `state_topic`
    /// (`<base>/<camera>/person/<person>`, one level each), never from splitting its id. An entity of an enrolled
    /// person under an id of an earlier scheme loses only its configuration (the current one is announced beside it).
    fn forget_if_deleted(&mut self, topic: &str, payload: &[u8]) {
        if !topic.contains("/binary_sensor/") {
            return;
        }
        let Some(object) = topic.strip_suffix("/config").and_then(|t| t.rsplit('/').next()) else { return };
        let config: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let Some(state) = config.get("state_topic").and_then(serde_json::Value::as_str) else { return };
        let Some(rest) = state.strip_prefix(&format!("{}/", self.topics.base)) else { return };
        let levels: Vec<&str> = rest.split('/').collect();
        let &[camera_slug, "person", person_slug] = levels.as_slice() else { return };
        // A camera this daemon does not watch (any more) is left alone.
        let Some(camera) = self.cameras.iter().find(|c| slug(c) == camera_slug).cloned() else { return };
        let person = self.people.iter().find(|p| slug(p) == person_slug).cloned();
        if let Some(person) = &person {
            if object == entity_object(&camera, person) {
                return;
            }
            tracing::info!(camera = %camera, entity = object, "Removing a Home Assistant entity of an earlier naming scheme.");
            self.send(topic.to_string(), true, Vec::new());
            return;
        }
        tracing::info!(camera = %camera, entity = object, "Removing the Home Assistant entity of a person no longer enrolled.");
        self.send(topic.to_string(), true, Vec::new());
        self.send(format!("{state}/attributes"), true, Vec::new());
        self.send(state.to_string(), true, Vec::new());
    }

    fn event(&mut self, event: &Event, line: &str) {
        let camera = event.camera.clone();
        if !self.cameras.contains(&camera) {
            self.cameras.push(camera.clone());
            if self.connected {
                self.discover_camera(&camera);
            }
        }
        self.send(self.topics.camera(&camera, "events"), false, line);
        if let Some(jpeg) = &event.picture {
            self.send(self.topics.camera(&camera, "last_face"), true, jpeg.to_vec());
            self.last_face.insert(camera.clone(), jpeg.clone());
        }
        match &event.body {
            EventBody::TrackStarted(face) => {
                self.track_named(&camera, face);
                if face.known {
                    self.recognized(&camera, face, event.frame_ts.unwrap_or(event.emit_ts));
                } else {
                    self.send(self.topics.camera(&camera, "unknown"), false, line);
                    self.unknown(&camera, face, event.frame_ts.unwrap_or(event.emit_ts));
                }
            }
            EventBody::IdentityChanged { face, .. } => {
                self.track_named(&camera, face);
                if face.known {
                    self.recognized(&camera, face, event.frame_ts.unwrap_or(event.emit_ts));
                } else {
                    self.send(self.topics.camera(&camera, "unknown"), false, line);
                    self.unknown(&camera, face, event.frame_ts.unwrap_or(event.emit_ts));
                }
            }
            EventBody::TrackUpdated(face) => self.track_named(&camera, face),
            EventBody::TrackEnded { face, .. } => {
                if let Some(name) = self.tracks.remove(&(camera.clone(), face.track_id)) {
                    if let Some(p) = self.present.get_mut(&(camera.clone(), name)) {
                        p.track_left(face.track_id);
                    }
                }
                self.count_faces(&camera);
            }
            _ => {}
        }
    }

    /// A live track carries `face.name` now.
    fn track_named(&mut self, camera: &str, face: &TrackFace) {
        let key = (camera.to_string(), face.track_id);
        let before = self.tracks.insert(key, face.name.clone());
        if let Some(old) = before.filter(|old| *old != face.name) {
            if let Some(p) = self.present.get_mut(&(camera.to_string(), old)) {
                p.track_left(face.track_id);
            }
        }
        if face.known {
            let attributes = json!({
                "name": face.name, "score": (f64::from(face.score) * 1000.0).round() / 1000.0, "track_id": face.track_id,
                "last_seen": wall_now(),
            });
            let p = self.present.entry((camera.to_string(), face.name.clone())).or_default();
            p.live.insert(face.track_id);
            p.last_seen = Some(Instant::now());
            p.attributes = attributes;
            if !p.on {
                self.set_presence(camera, &face.name, true);
            }
        }
        self.count_faces(camera);
    }

    fn recognized(&mut self, camera: &str, face: &TrackFace, frame_ts: f64) {
        if !self.people.contains(&face.name) {
            // Enrolled while the daemon runs: announce them now.
            self.people.insert(face.name.clone());
            if self.connected {
                self.discover_person(camera, &face.name);
            }
        }
        let last = json!({"name": face.name, "score": (f64::from(face.score) * 1000.0).round() / 1000.0, "track_id": face.track_id, "ts": frame_ts});
        self.send(self.topics.camera(camera, "last_recognized"), true, last.to_string());
        self.last.insert(camera.to_string(), last);
    }

    fn unknown(&mut self, camera: &str, face: &TrackFace, frame_ts: f64) {
        let last = json!({
            "label": face.stranger.as_deref().unwrap_or(crate::base::UNKNOWN),
            "stranger": face.stranger,
            "score": (f64::from(face.score) * 1000.0).round() / 1000.0,
            "track_id": face.track_id,
            "ts": frame_ts,
        });
        self.send(self.topics.camera(camera, "last_unknown"), true, last.to_string());
        self.last_unknown.insert(camera.to_string(), last);
    }

    fn set_presence(&mut self, camera: &str, name: &str, on: bool) {
        let p = self.present.entry((camera.to_string(), name.to_string())).or_default();
        p.on = on;
        p.published = Some(Instant::now());
        let attributes = p.attributes.to_string();
        let topic = self.topics.person(camera, name);
        self.send(format!("{topic}/attributes"), true, attributes);
        self.send(topic, true, if on { "ON" } else { "OFF" });
    }

    /// The attributes of each person in view (a live track of theirs), published again every `refresh` with
    /// `last_seen` now: Home Assistant shows when they were last seen, not when they arrived. Nothing is sent for
    /// people away, nor while the broker is (the attributes are kept up to date for the next connection's
    /// announcement).
    fn refresh(&mut self) {
        if self.refresh.is_zero() {
            return;
        }
        let (every, now, wall) = (self.refresh, Instant::now(), wall_now());
        let connected = self.link.load(Ordering::Relaxed);
        let mut due = Vec::new();
        for ((camera, name), p) in &mut self.present {
            if !p.on || p.live.is_empty() || !p.attributes.is_object() || p.published.is_some_and(|t| now.duration_since(t) < every) {
                continue;
            }
            p.attributes["last_seen"] = json!(wall);
            if connected {
                p.published = Some(now);
                due.push((format!("{}/attributes", self.topics.person(camera, name)), p.attributes.to_string()));
            }
        }
        for (topic, attributes) in due {
            self.send(topic, true, attributes);
        }
    }

    fn count_faces(&mut self, camera: &str) {
        let n = self.tracks.keys().filter(|(c, _)| c == camera).count();
        if self.faces.insert(camera.to_string(), n) != Some(n) {
            self.send(self.topics.camera(camera, "faces"), true, n.to_string());
        }
    }

    /// People seen by no live track for `presence_timeout` are away.
    fn expire(&mut self) {
        let timeout = self.timeout;
        let away: Vec<(String, String)> = self
            .present
            .iter()
            .filter(|(_, p)| p.on && p.live.is_empty() && p.last_seen.is_none_or(|t| t.elapsed() >= timeout))
            .map(|(k, _)| k.clone())
            .collect();
        for (camera, name) in away {
            self.set_presence(&camera, &name, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_topic_and_id_safe_and_distinct() {
        assert_eq!(slug("ann"), "ann");
        assert_eq!(slug("lin-manuel-miranda"), "lin-manuel-miranda");
        assert!(slug("Lin Manuel").starts_with("Lin_Manuel_"), "{}", slug("Lin Manuel"));
        for (a, b) in [("José", "Jos_"), ("Ann B", "Ann_B"), ("Ann", "ann"), ("a b", "a_b")] {
            assert_ne!(slug(a), slug(b), "{a} and {b} share a slug");
        }
        let safe = |s: String| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        assert!(safe(slug("José")) && safe(slug("a/b+#")) && !slug("").is_empty());
        for name in ["a__b", "_x", "x_", "__", "a _b", "stage_left", "", "Zoë  Ann"] {
            let s = slug(name);
            assert!(!s.contains("__") && !s.starts_with('_') && !s.ends_with('_') && !s.is_empty(), "{name:?} -> {s:?}");
        }
        assert_ne!(slug("a__b"), slug("a_b"));
    }

    #[test]
    fn entity_ids_of_two_cameras_never_collide() {
        // `stage` + `left_alex` and `stage_left` + `alex` were both `stage_left_alex`.
        assert_ne!(entity_object("stage", "left_alex"), entity_object("stage_left", "alex"));
        assert_eq!(entity_object("stage_left", "alex"), "stage_left__alex");
        let (cam, person) = entity_object("stage", "left_alex").split_once("__").map(|(a, b)| (a.to_string(), b.to_string())).expect("sep");
        assert_eq!((cam.as_str(), person.as_str()), ("stage", "left_alex"));
    }

    #[test]
    fn presence_refresh_is_a_second_or_more_or_off() {
        let mut cfg = crate::config::Config::default_embedded().expect("embedded defaults").mqtt;
        assert_eq!(cfg.presence_refresh, Duration::from_secs(30), "the default");
        cfg.host = "broker.lan".into();
        let problems = |cfg: &MqttConfig| {
            let mut out = Vec::new();
            cfg.problems(&mut out);
            out
        };
        for (secs, ok) in [(0.0, true), (1.0, true), (86_400.0, true), (0.5, false), (86_401.0, false)] {
            cfg.presence_refresh = Duration::from_secs_f64(secs);
            let found = problems(&cfg);
            assert_eq!(found.is_empty(), ok, "{secs} s: {found:?}");
            assert!(found.iter().all(|p| p.starts_with("mqtt.presence_refresh_s")), "{found:?}");
        }
    }

    #[test]
    fn the_password_never_shows() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(serde_json::to_string(&s).expect("json"), "\"***\"");
    }
}
