//! Zeek's view of a connection: the `history` string and `conn_state`, so that records line up
//! with a Zeek conn.log. The originator is the client; `^` marks that the first packet came
//! from the server (Zeek's "flipped" connection).

use super::Side;
use super::endpoint::SentKind;
use crate::decode::Segment;

/// The letters Zeek writes once per direction.
const ONCE: [u8; 2] = [b'A', b'D'];
/// The letters Zeek writes at the 1st, 10th, 100th ... occurrence.
const COUNTED: [u8; 2] = [b'T', b'W'];

/// Zeek's connection history, built packet by packet.
#[derive(Debug, Clone, Default)]
pub struct History {
    letters: String,
    /// Per direction (client, server): once-letters already written.
    once_seen: [[bool; ONCE.len()]; 2],
    /// Per direction: how many times each counted letter happened.
    counts: [[u32; COUNTED.len()]; 2],
    /// Per direction: the sequence number of the last S/H, F and R written, so a letter repeats
    /// only for a new sequence number.
    last_seq: [[Option<u32>; 3]; 2],
}

impl History {
    pub fn new(flipped: bool) -> Self {
        History {
            letters: if flipped { "^".into() } else { String::new() },
            ..History::default()
        }
    }

    pub fn as_str(&self) -> &str {
        &self.letters
    }

    /// Adds the letters for one segment sent by `sender`.
    pub fn record(&mut self, seg: &Segment<'_>, sender: Side, kind: SentKind) {
        let dir = sender.index();
        let f = seg.flags;
        if f.syn() && (f.fin() || f.rst()) {
            self.push(sender, b'Q');
        } else if f.fin() && f.rst() {
            self.push(sender, b'I');
        } else {
            if f.syn() {
                let letter = if f.ack() { b'H' } else { b'S' };
                self.push_on_new_seq(sender, 0, seg.seq, letter);
            }
            if f.fin() {
                self.push_on_new_seq(sender, 1, seg.seq, b'F');
            }
            if f.rst() {
                self.push_on_new_seq(sender, 2, seg.seq, b'R');
            }
            if seg.payload_len > 0 {
                self.push_once(dir, sender, 1);
            } else if f.ack() && !f.syn() && !f.fin() && !f.rst() {
                self.push_once(dir, sender, 0);
            }
        }
        if kind.retransmission {
            self.count(dir, sender, 0);
        }
        if kind.zero_window {
            self.count(dir, sender, 1);
        }
    }

    fn push(&mut self, sender: Side, letter: u8) {
        let c = if sender == Side::Client {
            letter
        } else {
            letter.to_ascii_lowercase()
        };
        self.letters.push(char::from(c));
    }

    fn push_on_new_seq(&mut self, sender: Side, slot: usize, seq: u32, letter: u8) {
        if let Some(last) = self
            .last_seq
            .get_mut(sender.index())
            .and_then(|s| s.get_mut(slot))
        {
            if *last != Some(seq) {
                *last = Some(seq);
                self.push(sender, letter);
            }
        }
    }

    fn push_once(&mut self, dir: usize, sender: Side, which: usize) {
        let (Some(seen), Some(&letter)) = (
            self.once_seen.get_mut(dir).and_then(|s| s.get_mut(which)),
            ONCE.get(which),
        ) else {
            return;
        };
        if !*seen {
            *seen = true;
            self.push(sender, letter);
        }
    }

    fn count(&mut self, dir: usize, sender: Side, which: usize) {
        let (Some(n), Some(&letter)) = (
            self.counts.get_mut(dir).and_then(|c| c.get_mut(which)),
            COUNTED.get(which),
        ) else {
            return;
        };
        *n += 1;
        if is_power_of_ten(*n) {
            self.push(sender, letter);
        }
    }

    /// Matches Zeek's `^?S[^HAFGIQ]*R.*`: a SYN, then a RST, with no answer in between.
    fn is_syn_then_rst(&self) -> bool {
        let rest = self.letters.strip_prefix('^').unwrap_or(&self.letters);
        let Some(rest) = rest.strip_prefix('S') else {
            return false;
        };
        for c in rest.chars() {
            match c {
                'R' => return true,
                'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
                _ => {}
            }
        }
        false
    }
}

fn is_power_of_ten(mut n: u32) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

/// Zeek's coarse per-endpoint state, from what the endpoint sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeekEndpoint {
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

/// What the capture shows an endpoint sent, for [`ZeekEndpoint`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SentFacts {
    pub packets: u64,
    pub syn: bool,
    pub syn_ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub handshake_done: bool,
}

impl ZeekEndpoint {
    pub fn from_facts(f: SentFacts) -> Self {
        if f.rst {
            ZeekEndpoint::Reset
        } else if f.fin {
            ZeekEndpoint::Closed
        } else if (f.syn || f.syn_ack) && f.handshake_done {
            ZeekEndpoint::Established
        } else if f.syn_ack {
            ZeekEndpoint::SynAckSent
        } else if f.syn {
            ZeekEndpoint::SynSent
        } else if f.packets > 0 {
            ZeekEndpoint::Partial
        } else {
            ZeekEndpoint::Inactive
        }
    }
}

/// Zeek's `conn_state` from both endpoints' coarse states (scripts/base/protocols/conn/main.zeek,
/// `conn_state`).
pub fn conn_state(
    orig: ZeekEndpoint,
    resp: ZeekEndpoint,
    history: &History,
    no_bytes: bool,
) -> &'static str {
    use ZeekEndpoint::*;
    if resp == Reset {
        if matches!(orig, SynSent | SynAckSent) || (orig == Reset && no_bytes) {
            "REJ"
        } else if matches!(orig, Inactive | Partial) {
            "RSTRH"
        } else {
            "RSTR"
        }
    } else if orig == Reset {
        match resp {
            Inactive if history.is_syn_then_rst() => "RSTOS0",
            Inactive => "OTH",
            _ => "RSTO",
        }
    } else if orig == Closed && resp == Closed {
        "SF"
    } else if orig == Closed {
        if resp == Inactive { "SH" } else { "S2" }
    } else if resp == Closed {
        if orig == Inactive { "SHR" } else { "S3" }
    } else if orig == SynSent && resp == Inactive {
        "S0"
    } else if orig == Established && resp == Established {
        "S1"
    } else {
        "OTH"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_letters_fall_on_powers_of_ten() {
        let hits: Vec<u32> = (1..=1000).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(hits, vec![1, 10, 100, 1000]);
    }

    #[test]
    fn syn_then_rst_pattern() {
        let h = |s: &str| History {
            letters: s.into(),
            ..History::default()
        };
        assert!(h("SR").is_syn_then_rst());
        assert!(h("^STR").is_syn_then_rst());
        // Zeek's pattern excludes only the originator's (upper-case) answers.
        assert!(h("ShR").is_syn_then_rst());
        assert!(!h("SAR").is_syn_then_rst());
        assert!(!h("R").is_syn_then_rst());
    }
}
