//! The event line parser (what a subscriber, `bench` and the tests read from the socket): any line gives an event
//! or an error, never a crash; an event that parses writes back as a line that parses to the same line.
#![no_main]

use facewatch::publish::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<Event>(data) {
        let line = event.to_line();
        let again: Event = serde_json::from_str(&line).expect("a written event parses");
        assert_eq!(again.to_line(), line, "an event does not survive a round trip");
    }
});
