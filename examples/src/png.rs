//! A PNG writer for the pictures the examples and `cargo xtask bench` draw with
//! plotters' bitmap backend: 8-bit RGB, one zlib stream, through flate2.
//!
//! plotters' own encoder brings the `image` crate, which took 11 s of a clean build's
//! 61 (2 cores) of every example, for two small charts. `xtask` compiles this same
//! file (`#[path]`), so that it depends on nothing of ferrograd's.

use std::path::Path;

/// Writes `rgb` (`size.0 × size.1` pixels, three bytes each, row after row) as a PNG:
/// 8-bit RGB, no interlacing, each row unfiltered, all of it in one zlib stream.
pub fn write_rgb(path: &Path, (width, height): (u32, u32), rgb: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let row_len = width as usize * 3;
    let mut rows = Vec::with_capacity((row_len + 1) * height as usize);
    for row in rgb.chunks_exact(row_len) {
        // Each row starts with its filter type: 0, none.
        rows.push(0);
        rows.extend_from_slice(row);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&rows)?;
    let image_data = zlib.finish()?;
    let mut header = Vec::with_capacity(13);
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlacing.
    header.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &header[..]), (b"IDAT", &image_data[..]), (b"IEND", &[][..])] {
        png.extend((data.len() as u32).to_be_bytes());
        // The CRC covers the chunk's type and data.
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend(kind);
        png.extend(data);
        png.extend(crc.sum().to_be_bytes());
    }
    std::fs::write(path, png)
}
