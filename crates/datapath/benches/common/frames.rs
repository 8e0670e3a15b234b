//! Frames the benches send.

/// A 64-byte Ethernet/IPv4/UDP frame; `n` varies the source address and port.
pub fn frame(n: u32) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&(0x0a00_0000 | n).to_be_bytes());
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&(1024 + (n % 60000) as u16).to_be_bytes());
    f[36..38].copy_from_slice(&53u16.to_be_bytes());
    f[38..40].copy_from_slice(&30u16.to_be_bytes());
    f
}
