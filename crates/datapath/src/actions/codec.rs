//! The binary encoding of an action list: what crosses napi between the
//! TypeScript face and the datapath. Rust is the source of truth; the format
//! is written down in [`crate::actions`]'s module doc.

use super::{Action, ActionError, Field, SetField};
use crate::key::Tunnel;

/// Action kinds on the wire.
pub mod kind {
    pub const OUTPUT: u8 = 1;
    pub const DROP: u8 = 2;
    pub const USERSPACE: u8 = 3;
    pub const TRUNCATE: u8 = 4;
    pub const PUSH_VLAN: u8 = 5;
    pub const POP_VLAN: u8 = 6;
    pub const SET: u8 = 7;
    pub const SET_TUNNEL: u8 = 8;
}

/// Encodes `actions` (see the module doc of [`crate::actions`]).
pub fn encode(actions: &[Action]) -> Vec<u8> {
    let mut out = Vec::with_capacity(actions.len() * 8);
    for a in actions {
        match *a {
            Action::Output(port) => put(&mut out, kind::OUTPUT, &port.to_be_bytes()),
            Action::Drop => put(&mut out, kind::DROP, &[]),
            Action::Userspace(cookie) => put(&mut out, kind::USERSPACE, &cookie.to_be_bytes()),
            Action::Truncate(max_len) => put(&mut out, kind::TRUNCATE, &max_len.to_be_bytes()),
            Action::PushVlan { tpid, tci } => {
                let [a, b] = tpid.to_be_bytes();
                let [c, d] = tci.to_be_bytes();
                put(&mut out, kind::PUSH_VLAN, &[a, b, c, d]);
            }
            Action::PopVlan => put(&mut out, kind::POP_VLAN, &[]),
            Action::Set(s) => {
                let n = s.field().width();
                out.extend_from_slice(&[kind::SET, (1 + 2 * n) as u8, s.field() as u8]);
                out.extend_from_slice(s.value());
                out.extend_from_slice(s.mask());
            }
            Action::SetTunnel(t) => {
                let mut p = [0u8; 12];
                p[..4].copy_from_slice(&t.id.to_be_bytes());
                p[4..8].copy_from_slice(&t.src.to_be_bytes());
                p[8..].copy_from_slice(&t.dst.to_be_bytes());
                put(&mut out, kind::SET_TUNNEL, &p);
            }
        }
    }
    out
}

fn put(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    out.extend_from_slice(&[kind, payload.len() as u8]);
    out.extend_from_slice(payload);
}

/// Decodes an action list, validating every action; the error says at which
/// byte offset the first bad action starts.
pub fn decode(mut bytes: &[u8]) -> Result<Vec<Action>, ActionError> {
    let mut actions = Vec::new();
    let mut offset = 0;
    while !bytes.is_empty() {
        let [k, len, ..] = *bytes else {
            return Err(ActionError::Truncated { offset });
        };
        let len = len as usize;
        let Some(p) = bytes.get(2..2 + len) else {
            return Err(ActionError::Truncated { offset });
        };
        let bad_len = ActionError::BadLength {
            offset,
            kind: k,
            len,
        };
        let action = match (k, p.len()) {
            (kind::OUTPUT, 4) => Action::Output(u32::from_be_bytes([p[0], p[1], p[2], p[3]])),
            (kind::DROP, 0) => Action::Drop,
            (kind::USERSPACE, 8) => Action::Userspace(u64::from_be_bytes([
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
            ])),
            (kind::TRUNCATE, 4) => Action::Truncate(u32::from_be_bytes([p[0], p[1], p[2], p[3]])),
            (kind::PUSH_VLAN, 4) => {
                let tpid = u16::from_be_bytes([p[0], p[1]]);
                if tpid != 0x8100 && tpid != 0x88a8 {
                    return Err(ActionError::BadTpid { offset, tpid });
                }
                Action::PushVlan {
                    tpid,
                    tci: u16::from_be_bytes([p[2], p[3]]),
                }
            }
            (kind::POP_VLAN, 0) => Action::PopVlan,
            (kind::SET, n) if n >= 1 => {
                let field = Field::from_u8(p[0]).ok_or(ActionError::UnknownField {
                    offset,
                    field: p[0],
                })?;
                let w = field.width();
                if n != 1 + 2 * w {
                    return Err(bad_len);
                }
                let s =
                    SetField::masked(field, &p[1..1 + w], &p[1 + w..]).map_err(|e| e.at(offset))?;
                Action::Set(s)
            }
            (kind::SET_TUNNEL, 12) => {
                let word = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
                Action::SetTunnel(Tunnel {
                    id: word(0),
                    src: word(4),
                    dst: word(8),
                })
            }
            (kind::OUTPUT..=kind::SET_TUNNEL, _) => return Err(bad_len),
            _ => return Err(ActionError::UnknownKind { offset, kind: k }),
        };
        actions.push(action);
        offset += 2 + len;
        bytes = &bytes[2 + len..];
    }
    Ok(actions)
}
