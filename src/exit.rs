//! Exit codes: each error type says which one it means ([`Exit::exit_code`]); the command line only asks.
//!
//! 0 success (`verify`: same person); 1 `verify`: different person; 2 usage or configuration error; 3 input error
//! (unreadable image, no face, several faces, bad folder or file, source that cannot be opened); 4 model or
//! runtime error; 5 gallery error; 6 the event socket cannot be served (another daemon serves it, or its folder
//! is unsafe); 70 internal error (a bug: a stage that panicked or did not drain in time).

/// Success, or `verify` found the same person.
pub const OK: u8 = 0;
/// `verify` found different persons.
pub const DIFFERENT: u8 = 1;
/// Bad usage or configuration.
pub const CONFIG: u8 = 2;
/// Bad input: image, face count, folder, file, a source that cannot be opened.
pub const INPUT: u8 = 3;
/// Model file or inference runtime problem.
pub const MODEL: u8 = 4;
/// Gallery problem.
pub const GALLERY: u8 = 5;
/// The event socket cannot be served.
pub const SOCKET: u8 = 6;
/// A bug.
pub const INTERNAL: u8 = 70;

/// An error that knows the process exit code it stands for.
pub trait Exit {
    /// The exit code.
    fn exit_code(&self) -> u8;
}
