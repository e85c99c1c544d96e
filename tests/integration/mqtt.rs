//! MQTT through a real broker: Debian's `mosquitto`, started by each test on a free port (`scripts/setup.sh`
//! installs it), the daemon run on the sample clip, and a real client subscribed to everything.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use super::common::{arg, clip, face, gallery, root};

/// A mosquitto broker on a free localhost port, stopped when dropped.
struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        Self::on(port)
    }

    fn on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")).expect("write conf");
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| panic!("mosquitto is not installed: run scripts/setup.sh (Debian: apt install mosquitto)"));
        let child = Command::new(binary).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start mosquitto");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "mosquitto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, _dir: dir }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message as a subscriber got it.
#[derive(Debug, Clone)]
struct Message {
    topic: String,
    payload: String,
    bytes: Vec<u8>,
    retain: bool,
    at: Instant,
}

/// A client subscribed to `#`, collecting every message.
fn listen(port: u16) -> Arc<Mutex<Vec<Message>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let mut options = MqttOptions::new(format!("test-listener-{port}-{}", std::process::id()), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5)).set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 100);
    client.subscribe("#", QoS::AtLeastOnce).expect("subscribe");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _client = client;
        for item in connection.iter() {
            match item {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => sink.lock().expect("lock").push(Message {
                    topic: p.topic.clone(),
                    payload: String::from_utf8_lossy(&p.payload).into_owned(),
                    bytes: p.payload.to_vec(),
                    retain: p.retain,
                    at: Instant::now(),
                }),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("subscribed");
    got
}

fn on(messages: &[Message], topic: &str) -> Vec<Message> {
    messages.iter().filter(|m| m.topic == topic).cloned().collect()
}

fn facewatch(gallery: &Path, port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facewatch"));
    c.current_dir(root())
        .args(["--gallery", arg(gallery), "--set", "runtime.intra_threads=1", "--set", "mqtt.host=127.0.0.1"])
        .arg("--set")
        .arg(format!("mqtt.port={port}"))
        .args(["--set", "mqtt.node_id=testnode"])
        .args(args)
        .env("RUST_LOG", "info,ort=warn");
    c
}

fn lin_gallery(dir: &Path) -> PathBuf {
    gallery(dir, &[("lin", &[face("video/lin-manuel-miranda.png")]), ("alex", &[face("video/alex-lacamoire.png")])])
}

/// The sample clip at its frame rate: every event on the socket's stdout copy is also on MQTT, in order; Lin's
/// presence goes ON, then OFF once he has been gone for `presence_timeout_s` (while the clip still runs); the
/// last recognized face is retained; discovery announces each person with the fields Home Assistant requires.
#[test]
fn the_sample_clip_s_events_presence_and_discovery_reach_the_broker() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let g = lin_gallery(dir.path());
    let messages = listen(broker.port);
    let out = facewatch(
        &g,
        broker.port,
        &[
            "--set",
            "mqtt.presence_timeout_s=1",
            "--set",
            "mqtt.username=fw",
            "--set",
            "mqtt.password=s3cret-mqtt-pw",
            "run",
            "--source",
            arg(&clip()),
            "--camera",
            "stage",
            "--socket",
            "",
            "--print",
        ],
    )
    .output()
    .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    std::thread::sleep(Duration::from_millis(500));
    let messages = messages.lock().expect("lock").clone();
    let printed: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("event")).collect();
    let mqtt_events: Vec<Value> =
        on(&messages, "facewatch/testnode/stage/events").iter().map(|m| serde_json::from_str(&m.payload).expect("event JSON")).collect();
    assert!(!printed.is_empty());
    let types = |v: &[Value]| v.iter().map(|e| format!("{}:{}", e["type"], e["track_id"])).collect::<Vec<_>>();
    assert_eq!(types(&mqtt_events), types(&printed), "every event, in order");

    // Presence: ON while Lin is seen, OFF a second after his last track ends, before the clip is over.
    let presence = on(&messages, "facewatch/testnode/stage/person/lin");
    let states: Vec<&str> = presence.iter().map(|m| m.payload.as_str()).collect();
    // What a client connecting later is told: the retained state.
    let later = listen(broker.port);
    std::thread::sleep(Duration::from_millis(500));
    let retained = later.lock().expect("lock").clone();
    assert!(retained.iter().all(|m| m.retain), "a new subscriber gets only retained messages");
    for (topic, payload) in [
        ("facewatch/testnode/stage/person/lin", "OFF"),
        ("facewatch/testnode/availability", "offline"),
        ("facewatch/testnode/stage/faces", "0"),
    ] {
        assert_eq!(
            on(&retained, topic).last().map(|m| m.payload.as_str()),
            Some(payload),
            "{topic} retained; sent: {:?}\n{stderr}",
            on(&messages, topic).iter().map(|m| m.payload.as_str()).collect::<Vec<_>>()
        );
    }
    assert!(!on(&retained, "facewatch/testnode/stage/last_recognized").is_empty(), "the last recognized face is retained");
    assert!(!on(&retained, "homeassistant/binary_sensor/facewatch_testnode/stage__lin/config").is_empty(), "discovery is retained");
    assert!(on(&retained, "facewatch/testnode/stage/events").is_empty(), "events are not retained");
    let first_on = states.iter().position(|s| *s == "ON").unwrap_or_else(|| panic!("Lin never present: {states:?}"));
    assert!(states[first_on..].contains(&"OFF"), "Lin never went away: {states:?}");
    let offline = on(&messages, "facewatch/testnode/availability");
    assert_eq!(offline.first().map(|m| m.payload.as_str()), Some("online"));
    assert_eq!(offline.last().map(|m| m.payload.as_str()), Some("offline"), "a clean stop says offline");
    let timed_out = presence.iter().find(|m| m.payload == "OFF" && m.at < offline.last().expect("offline").at - Duration::from_millis(300));
    assert!(timed_out.is_some(), "an OFF by the presence timeout, before the end of the run: {states:?}");
    let attributes: Value =
        serde_json::from_str(&on(&messages, "facewatch/testnode/stage/person/lin/attributes")[0].payload).expect("attributes");
    assert_eq!(attributes["name"], "lin");

    let last = on(&messages, "facewatch/testnode/stage/last_recognized");
    let last: Value = serde_json::from_str(&last.last().expect("a last recognized face").payload).expect("JSON");
    assert!(last["name"] == "lin" || last["name"] == "alex", "{last}");
    assert!(on(&messages, "facewatch/testnode/stage/faces").iter().any(|m| m.payload != "0"), "faces in view counted");

    // Discovery: a binary_sensor per person, two sensors per camera, with Home Assistant's required fields.
    for (topic, state) in [
        ("homeassistant/binary_sensor/facewatch_testnode/stage__lin/config", "facewatch/testnode/stage/person/lin"),
        ("homeassistant/binary_sensor/facewatch_testnode/stage__alex/config", "facewatch/testnode/stage/person/alex"),
        ("homeassistant/sensor/facewatch_testnode/stage_last_recognized/config", "facewatch/testnode/stage/last_recognized"),
        ("homeassistant/sensor/facewatch_testnode/stage_faces/config", "facewatch/testnode/stage/faces"),
    ] {
        let config = on(&messages, topic);
        let config: Value =
            serde_json::from_str(&config.first().unwrap_or_else(|| panic!("no discovery at {topic}")).payload).expect("JSON");
        assert_eq!(config["state_topic"], state, "{config}");
        assert_eq!(config["availability_topic"], "facewatch/testnode/availability");
        assert!(config["unique_id"].as_str().is_some_and(|u| u.starts_with("facewatch_testnode_")), "{config}");
        assert!(config["device"]["identifiers"][0] == "facewatch_testnode_stage" && config["device"]["name"].is_string(), "{config}");
        assert!(config["name"].is_string());
    }
    let lin: Value =
        serde_json::from_str(&on(&messages, "homeassistant/binary_sensor/facewatch_testnode/stage__lin/config")[0].payload).expect("JSON");
    assert_eq!(
        (lin["payload_on"].as_str(), lin["payload_off"].as_str(), lin["device_class"].as_str()),
        (Some("ON"), Some("OFF"), Some("presence"))
    );

    // Unknown faces (the audience) have their own topic.
    assert!(!on(&messages, "facewatch/testnode/stage/unknown").is_empty(), "no unknown face event");

    // The password is nowhere: not in the log, not on the broker, not in the printed configuration.
    assert!(!stderr.contains("s3cret-mqtt-pw"), "{stderr}");
    assert!(messages.iter().all(|m| !m.payload.contains("s3cret-mqtt-pw")));
    let check =
        facewatch(&g, broker.port, &["--set", "mqtt.password=s3cret-mqtt-pw", "--json", "check-config"]).output().expect("check-config");
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(check.contains("\"mqtt\"") && !check.contains("s3cret-mqtt-pw"), "{check}");
}

/// A person who stays in view has their presence attributes sent again with a later `last_seen` (Home Assistant
/// shows the attributes' `last_seen`; it was only sent at arrival): Lin's medium close-up lasts about 4 s, so
/// `presence_refresh_s = 1` sends his attributes again before he goes, each with a newer `last_seen`, a second or
/// more apart; once he is away nothing more is sent until he comes back.
#[test]
fn a_person_who_stays_has_their_last_seen_sent_again_while_present() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let g = lin_gallery(dir.path());
    let messages = listen(broker.port);
    let out = facewatch(
        &g,
        broker.port,
        &[
            "--set",
            "mqtt.presence_timeout_s=1",
            "--set",
            "mqtt.presence_refresh_s=1",
            "run",
            "--source",
            arg(&clip()),
            "--camera",
            "stage",
            "--socket",
            "",
        ],
    )
    .output()
    .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    std::thread::sleep(Duration::from_millis(500));
    let messages = messages.lock().expect("lock").clone();
    let state = "facewatch/testnode/stage/person/lin";
    let attributes = format!("{state}/attributes");
    // Lin's messages in the order the broker passed them on, cut into his stays: the attributes are sent before
    // the state they go with, so a stay is his arrival's attributes, ON, the refreshes, his departure's attributes,
    // OFF. He is on stage twice (0.7 s, then 4 s).
    let mut stays: Vec<Vec<f64>> = Vec::new();
    let (mut present, mut pending) = (false, Vec::new());
    for m in messages.iter().filter(|m| m.topic == state || m.topic == attributes) {
        if m.topic == state {
            match m.payload.as_str() {
                "ON" if !present => {
                    assert!(pending.len() <= 1, "attributes sent while Lin was away: {pending:?} ({stays:?})");
                    present = true;
                    stays.push(std::mem::take(&mut pending));
                }
                "OFF" => present = false,
                _ => {}
            }
            continue;
        }
        let a: Value = serde_json::from_str(&m.payload).expect("attributes JSON");
        assert_eq!(a["name"], "lin", "{a}");
        let last_seen = a["last_seen"].as_f64().unwrap_or_else(|| panic!("no last_seen: {a}"));
        match stays.last_mut().filter(|_| present) {
            Some(stay) => stay.push(last_seen),
            None => pending.push(last_seen),
        }
    }
    assert!(!stays.is_empty() && pending.is_empty(), "stays {stays:?}, sent while away {pending:?}:\n{stderr}");
    // While present (the departure's attributes left out): arrival, then a refresh every second, each later.
    let longest =
        stays.iter().map(|stay| stay.split_last().map_or(&[][..], |(_, present)| present)).max_by_key(|s| s.len()).expect("a stay");
    assert!(longest.len() >= 2, "Lin's attributes were sent once while he stayed ({stays:?}):\n{stderr}");
    for pair in longest.windows(2) {
        assert!(pair[1] - pair[0] >= 0.9, "each refresh a second or more after the one before, later each time: {stays:?}");
    }
    for stay in &stays {
        assert!(stay.windows(2).all(|p| p[1] > p[0]), "last_seen only grows: {stays:?}");
    }
}

/// Killed without a goodbye, the daemon is marked offline by the broker (its last will); a person no longer
/// enrolled loses their Home Assistant entity.
#[test]
fn the_last_will_says_offline_and_deleted_people_lose_their_entity() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let g = lin_gallery(dir.path());
    // A retained entity of a person since removed from the gallery.
    {
        let mut options = MqttOptions::new("test-ghost", "127.0.0.1", broker.port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut connection) = Client::new(options, 10);
        client
            .publish(
                "homeassistant/binary_sensor/facewatch_testnode/stage__ghost/config",
                QoS::AtLeastOnce,
                true,
                r#"{"name":"ghost","state_topic":"facewatch/testnode/stage/person/ghost"}"#,
            )
            .expect("publish");
        for item in connection.iter() {
            if matches!(item, Ok(Event::Incoming(Packet::PubAck(_))) | Err(_)) {
                break;
            }
        }
    }
    let messages = listen(broker.port);
    // The API too, for the MQTT metrics.
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "mqtt-test-key\n").expect("keys");
    std::fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let api_port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let (listen_at, keys_file) = (format!("api.listen=127.0.0.1:{api_port}"), format!("api.keys_file={}", keys.display()));
    let mut child = facewatch(
        &g,
        broker.port,
        &["--set", &listen_at, "--set", &keys_file, "run", "--source", arg(&clip()), "--camera", "stage", "--socket", "", "--loop"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("run");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let log = std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    let start = Instant::now();
    let online = loop {
        let got = messages.lock().expect("lock").clone();
        if got.iter().any(|m| m.topic == "facewatch/testnode/availability" && m.payload == "online") {
            break got;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never online");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_secs(1));
    let removed = messages.lock().expect("lock").clone();
    let ghost = on(&removed, "homeassistant/binary_sensor/facewatch_testnode/stage__ghost/config");
    assert!(ghost.iter().any(|m| m.payload.is_empty()), "the ghost's entity was not removed: {ghost:?} ({} messages)", online.len());
    assert!(on(&removed, "homeassistant/binary_sensor/facewatch_testnode/stage__lin/config").iter().all(|m| !m.payload.is_empty()));

    let metrics = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
        .get(&format!("http://127.0.0.1:{api_port}/api/metrics"))
        .set("X-Api-Key", "mqtt-test-key")
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(
        metrics.contains("facewatch_mqtt_connected 1") && metrics.contains("facewatch_output_events_dropped_total{output=\"mqtt\"} 0"),
        "{metrics}"
    );

    child.kill().expect("kill -9");
    let _ = child.wait();
    let killed = Instant::now();
    loop {
        let got = messages.lock().expect("lock").clone();
        if on(&got, "facewatch/testnode/availability").last().is_some_and(|m| m.payload == "offline") {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "no last will after kill -9");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = log.join();
}

/// A broker that goes away mid-run costs the pipeline nothing: every frame is processed (read as fast as possible,
/// none dropped) and the events still reach the other outputs; the loss is logged once, and the daemon reconnects
/// when the broker is back and goes on publishing there.
#[test]
fn a_broker_stopped_mid_run_never_stalls_the_pipeline_and_is_reconnected() {
    let mut broker = Broker::start();
    let port = broker.port;
    let dir = tempfile::tempdir().expect("tempdir");
    let g = lin_gallery(dir.path());
    let clip = clip();
    let args = [
        "--set",
        "mqtt.reconnect_max_s=1",
        "--set",
        "publish.update_interval_ms=0",
        "run",
        "--source",
        arg(&clip),
        "--camera",
        "stage",
        "--socket",
        "",
        "--print",
        "--fast",
        "--loop",
        "--max-frames",
        "550",
    ];
    let messages = listen(port);
    let child = facewatch(&g, port, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run");
    // Stop the broker once the daemon is publishing, bring it back two seconds later.
    let start = Instant::now();
    while !messages.lock().expect("lock").iter().any(|m| m.topic == "facewatch/testnode/stage/events") {
        assert!(start.elapsed() < Duration::from_secs(60), "no event reached the broker");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    let restarted = Broker::on(port);
    let back = listen(restarted.port);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stopped = stderr.lines().find(|l| l.contains("Stopped.")).unwrap_or_else(|| panic!("no final report: {stderr}"));
    assert!(stopped.contains("frames=550") && stopped.contains("dropped=0"), "every frame processed: {stopped}");
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() > 10, "events printed all along");
    assert_eq!(stderr.matches("MQTT broker unreachable").count(), 1, "the loss is said once: {stderr}");
    assert!(stderr.contains("MQTT broker connected again"), "{stderr}");
    std::thread::sleep(Duration::from_millis(300));
    let back = back.lock().expect("lock").clone();
    assert!(!on(&back, "facewatch/testnode/stage/events").is_empty(), "events reached the broker after its return");
    assert!(on(&back, "facewatch/testnode/availability").iter().any(|m| m.payload == "offline"), "the end of the run reached it");
}

/// Two cameras whose names share a prefix, `stage` and `stage_left`: restarted, the daemon reads back the entities it
/// announced and removes none of them. (Ids were `<camera>_<person>`, so `stage_left_alex` read as camera `stage`,
/// person `left_alex`, and every one of `stage_left`'s people lost their entity at each connection.)
#[test]
fn a_restart_with_cameras_stage_and_stage_left_keeps_every_entity_it_announced() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let g = lin_gallery(dir.path());
    let conf = dir.path().join("two.toml");
    let source = arg(&clip()).to_string();
    std::fs::write(
        &conf,
        format!("[[cameras]]\nname = \"stage\"\nsource = \"{source}\"\n\n[[cameras]]\nname = \"stage_left\"\nsource = \"{source}\"\n"),
    )
    .expect("config");
    let run = |frames: &str| {
        let out =
            facewatch(&g, broker.port, &["--config", arg(&conf), "run", "--socket", "", "--max-frames", frames]).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run("5");
    let messages = listen(broker.port);
    let announced: Vec<String> = {
        std::thread::sleep(Duration::from_millis(500));
        let retained = messages.lock().expect("lock").clone();
        retained.iter().filter(|m| m.topic.contains("/binary_sensor/") && !m.payload.is_empty()).map(|m| m.topic.clone()).collect()
    };
    for want in ["stage__lin", "stage__alex", "stage_left__lin", "stage_left__alex"] {
        assert!(announced.iter().any(|t| t.contains(&format!("/{want}/"))), "{want} not announced: {announced:?}");
    }
    run("5");
    std::thread::sleep(Duration::from_millis(500));
    let second = messages.lock().expect("lock").clone();
    let removed: Vec<&Message> = second.iter().filter(|m| m.topic.contains("/binary_sensor/") && m.payload.is_empty()).collect();
    assert!(removed.is_empty(), "entities of enrolled people removed at the second connection: {removed:?}");
    for topic in &announced {
        let state: Value = serde_json::from_str(&on(&second, topic).last().expect("still there").payload).expect("JSON");
        let presence = state["state_topic"].as_str().expect("state topic");
        assert!(on(&second, presence).iter().all(|m| !m.payload.is_empty()), "{presence} was cleared");
    }
}

/// A face no enrolled person matches reaches Home Assistant with its stranger's id: the camera's `last unknown`
/// sensor says `stranger-…` (the id the events carry), and its `last face` image entity gets the face as a JPEG.
#[test]
fn a_stranger_s_id_and_the_last_face_reach_home_assistant() {
    use opencv::core::{MatTraitConst, Vector};
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Alex only: Lin, on stage most of the clip, is a stranger to this gallery.
    let g = gallery(dir.path(), &[("alex", &[face("video/alex-lacamoire.png")])]);
    let messages = listen(broker.port);
    let out = facewatch(&g, broker.port, &["run", "--source", arg(&clip()), "--camera", "stage", "--socket", "", "--fast", "--print"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    std::thread::sleep(Duration::from_millis(500));
    let messages = messages.lock().expect("lock").clone();
    let printed: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("event")).collect();
    let strangers: Vec<&str> = printed.iter().filter_map(|e| e["stranger"].as_str()).collect();
    assert!(!strangers.is_empty(), "no event carried a stranger's id:\n{stderr}");

    let unknown: Vec<Value> =
        on(&messages, "facewatch/testnode/stage/last_unknown").iter().map(|m| serde_json::from_str(&m.payload).expect("JSON")).collect();
    let labelled: Vec<&Value> = unknown.iter().filter(|u| u["label"].as_str().is_some_and(|l| l.starts_with("stranger-"))).collect();
    assert!(!labelled.is_empty(), "the sensor never said a stranger's id: {unknown:?}");
    for u in &unknown {
        match u["stranger"].as_str() {
            Some(s) => assert!(u["label"] == s && strangers.contains(&s), "{u}"),
            None => assert_eq!(u["label"], "unknown", "{u}"),
        }
        assert!(u["track_id"].is_u64() && u["ts"].is_f64(), "{u}");
    }
    let config: Value = serde_json::from_str(
        &on(&messages, "homeassistant/sensor/facewatch_testnode/stage_last_unknown/config")
            .first()
            .expect("last unknown discovered")
            .payload,
    )
    .expect("JSON");
    assert_eq!(config["state_topic"], "facewatch/testnode/stage/last_unknown");
    assert_eq!(config["value_template"], "{{ value_json.label }}");

    // The image entity: its discovery, and a retained JPEG of a face.
    let image: Value = serde_json::from_str(
        &on(&messages, "homeassistant/image/facewatch_testnode/stage_last_face/config").first().expect("image discovered").payload,
    )
    .expect("JSON");
    assert_eq!(
        (image["image_topic"].as_str(), image["content_type"].as_str()),
        (Some("facewatch/testnode/stage/last_face"), Some("image/jpeg"))
    );
    assert_eq!(image["availability_topic"], "facewatch/testnode/availability");
    assert!(image["unique_id"].as_str().is_some_and(|u| u.starts_with("facewatch_testnode_")), "{image}");
    let faces = on(&messages, "facewatch/testnode/stage/last_face");
    let decisions = printed.iter().filter(|e| e["type"] == "track_started" || e["type"] == "identity_changed").count();
    assert!(!faces.is_empty() && faces.len() <= decisions, "{} pictures for {decisions} decisions", faces.len());
    for m in &faces {
        let jpeg = opencv::imgcodecs::imdecode(&Vector::<u8>::from_slice(&m.bytes), opencv::imgcodecs::IMREAD_COLOR).expect("decode");
        assert!(jpeg.cols() >= 16 && jpeg.cols() <= 128 && jpeg.rows() >= 16, "a face picture of {}x{}", jpeg.cols(), jpeg.rows());
    }
    // A client connecting later is told both.
    let later = listen(broker.port);
    std::thread::sleep(Duration::from_millis(500));
    let retained = later.lock().expect("lock").clone();
    let last = |topic: &str| on(&retained, topic).last().map(|m| m.bytes.clone());
    assert_eq!(last("facewatch/testnode/stage/last_face"), faces.last().map(|m| m.bytes.clone()), "the last face is retained");
    assert_eq!(
        last("facewatch/testnode/stage/last_unknown"),
        on(&messages, "facewatch/testnode/stage/last_unknown").last().map(|m| m.bytes.clone()),
        "the last unknown face is retained"
    );
}

/// Several nodes on one broker (the fleet's layout): each speaks under its own `node_id`, so the same camera name on
/// two nodes is two devices in Home Assistant; each node's availability is its own; a node's clean-up at connection
/// removes only its own entities (here `hall` no longer has Alex; `door`'s Alex stays). Two nodes given one node id
/// take the broker session from each other: that is reported, once, with what to change.
#[test]
fn nodes_on_one_broker_keep_their_own_topics_entities_and_availability() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let both = lin_gallery(dir.path());
    let lin_only = gallery(&dir.path().join("lin"), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let messages = listen(broker.port);
    let node = |g: &Path, id: &str, extra: &[&str]| {
        let mut c = facewatch(g, broker.port, &["--set", &format!("mqtt.node_id={id}")]);
        c.args(["run", "--source", arg(&clip()), "--camera", "stage", "--socket", ""])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c.spawn().expect("start a node")
    };
    let (door, hall) = (node(&both, "door", &["--fast"]), node(&both, "hall", &["--fast"]));
    for (name, child) in [("door", door), ("hall", hall)] {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::thread::sleep(Duration::from_millis(500));
    let first = messages.lock().expect("lock").clone();
    for id in ["door", "hall"] {
        assert!(!on(&first, &format!("facewatch/{id}/stage/events")).is_empty(), "{id}'s events are not under its node id");
        let availability: Vec<String> = on(&first, &format!("facewatch/{id}/availability")).into_iter().map(|m| m.payload).collect();
        assert_eq!(
            (availability.first().map(String::as_str), availability.last().map(String::as_str)),
            (Some("online"), Some("offline")),
            "{id}"
        );
        for person in ["lin", "alex"] {
            let topic = format!("homeassistant/binary_sensor/facewatch_{id}/stage__{person}/config");
            let config: Value =
                serde_json::from_str(&on(&first, &topic).first().unwrap_or_else(|| panic!("no {topic}")).payload).expect("JSON");
            assert!(config["unique_id"].as_str().is_some_and(|u| u.starts_with(&format!("facewatch_{id}_"))), "{config}");
            assert_eq!(config["device"]["name"], format!("facewatch {id} stage"), "{config}");
        }
    }

    // `hall` again, without Alex: its own Alex entity is removed, `door`'s is not touched.
    let before = first.len();
    let out = node(&lin_only, "hall", &["--max-frames", "5"]).wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(500));
    let later: Vec<Message> = messages.lock().expect("lock")[before..].to_vec();
    let cleared: Vec<&str> = later.iter().filter(|m| m.payload.is_empty()).map(|m| m.topic.as_str()).collect();
    assert!(cleared.contains(&"homeassistant/binary_sensor/facewatch_hall/stage__alex/config"), "hall kept Alex: {cleared:?}");
    assert!(cleared.iter().all(|t| !t.contains("facewatch_door") && !t.starts_with("facewatch/door/")), "hall touched door's: {cleared:?}");

    // Two nodes with one node id: each connection takes the session of the other, and both say so.
    let twin = ["--loop", "--max-frames", "450"];
    let (a, b) = (node(&both, "twin", &twin), node(&lin_only, "twin", &twin));
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stderr.matches("another client uses the same client id").count(), 1, "not reported once:\n{stderr}");
        assert!(stderr.contains("Give each node its own mqtt.node_id"), "{stderr}");
    }
}
