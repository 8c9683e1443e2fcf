//! The capture reader on whole files: any bytes, read to the end or the first error.
//!
//! Checks, beyond "no panic, no hang": frames come out at strictly increasing offsets, inside
//! the file when it is not compressed; every error names the file and its offset on one line;
//! after an error the reader stays finished.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use tcplife::capture::{CaptureReader, Compression};

const NAME: &str = "fuzz.pcap";

fuzz_target!(|data: &[u8]| {
    let size = data.len() as u64;
    let reader = CaptureReader::from_reader(NAME, Box::new(Cursor::new(data.to_vec())), Some(size));
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(error) => {
            check_error(&error);
            return;
        }
    };
    let plain = reader.compression() == Compression::None;
    let mut last_offset: Option<u64> = None;
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                if let Some(last) = last_offset {
                    assert!(
                        frame.offset > last,
                        "offsets go backwards: {last} then {}",
                        frame.offset
                    );
                }
                if plain {
                    assert!(
                        frame.offset < size,
                        "frame offset {} past the file end {size}",
                        frame.offset
                    );
                    assert!(
                        frame.data.len() as u64 <= size,
                        "frame longer than the file"
                    );
                }
                last_offset = Some(frame.offset);
                // Touch the bytes so a bad slice would show.
                std::hint::black_box(frame.data.iter().fold(0u8, |a, b| a ^ b));
            }
            Ok(None) => break,
            Err(error) => {
                check_error(&error);
                if plain {
                    if let Some(offset) = error.offset {
                        assert!(
                            offset <= size,
                            "error offset {offset} past the file end {size}"
                        );
                    }
                }
                assert!(
                    matches!(reader.next_frame(), Ok(None)),
                    "the reader goes on after an error"
                );
                break;
            }
        }
    }
    std::hint::black_box(reader.stats().skipped_total());
});

fn check_error(error: &tcplife::capture::CaptureError) {
    let message = error.to_string();
    assert!(
        message.starts_with(NAME),
        "the message does not name the file: {message}"
    );
    if let Some(offset) = error.offset {
        assert!(
            message.contains(&format!("byte {offset}")),
            "the message does not give the offset: {message}"
        );
    }
    assert!(
        !message.contains('\n'),
        "the message spans lines: {message}"
    );
}
