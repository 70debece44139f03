//! C2SP tlog-tiles resource paths: `tile/<L>/<N>[.p/<W>]` ("Merkle Tree"
//! section) and `tile/entries/<N>[.p/<W>]` ("Log entries" section).
//!
//! Why by hand: tlog_tiles 0.2's `Tile::path()` / `Tile::from_path()` use the
//! older Go sumdb layout `tile/<H>/<L>/<N>` (height in the path, `data` for
//! entries), which is not the C2SP serving layout. The C2SP rules are:
//!
//! - `<L>`: decimal 0..=63, no leading zeroes;
//! - `<N>`: zero-padded 3-digit elements, all but the last prefixed `x`
//!   (1234067 → `x001/x234/067`); we also reject leading `x000` elements so
//!   each index has exactly one spelling;
//! - `.p/<W>`: only on partial tiles, `<W>` decimal 1..=255, no leading zeroes.
//!
//! Tiles have height 8: a full tile is 256 hashes (8,192 bytes) or entries.

use std::fmt;

use crate::error::TlogError;

/// Tile height fixed by C2SP tlog-tiles.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u32 = 1 << TILE_HEIGHT;
/// Largest level a path may name.
pub const MAX_LEVEL: u8 = 63;
/// u64::MAX has 20 decimal digits: at most 7 three-digit elements.
const MAX_INDEX_ELEMENTS: usize = 7;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Merkle tree hashes at the given tile level.
    Hashes {
        /// `<L>`, 0..=63.
        level: u8,
    },
    /// An entry bundle (`tile/entries/...`).
    Entries,
}

/// A C2SP tlog-tiles tile coordinate; always valid once constructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TilePath {
    kind: TileKind,
    index: u64,
    width: u32,
}

impl TilePath {
    /// A tile at `kind`, index `index`, holding `width` (1..=256) hashes or
    /// entries; 256 is a full tile.
    pub fn new(kind: TileKind, index: u64, width: u32) -> Result<Self, TlogError> {
        let level = match kind {
            TileKind::Hashes { level } => Some(level),
            TileKind::Entries => None,
        };
        let bad = |reason| TlogError::BadTile {
            level,
            index,
            width,
            reason,
        };
        if level.is_some_and(|l| l > MAX_LEVEL) {
            return Err(bad("level above 63"));
        }
        if !(1..=TILE_WIDTH).contains(&width) {
            return Err(bad("width not in 1..=256"));
        }
        Ok(TilePath { kind, index, width })
    }

    /// Hash tile or entry bundle.
    pub fn kind(&self) -> TileKind {
        self.kind
    }
    /// `<N>`.
    pub fn index(&self) -> u64 {
        self.index
    }
    /// Hashes or entries in the tile (256 when full).
    pub fn width(&self) -> u32 {
        self.width
    }
    /// True for a partial tile (`.p/<W>` suffix).
    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// Parses a path relative to the log prefix, e.g. `tile/0/x001/x234/067.p/5`.
    pub fn parse(path: &str) -> Result<Self, TlogError> {
        let bad = |reason| TlogError::BadTilePath {
            path: path.chars().take(128).collect(),
            reason,
        };
        let rest = path
            .strip_prefix("tile/")
            .ok_or(bad("missing tile/ prefix"))?;
        let (first, rest) = rest.split_once('/').ok_or(bad("missing index"))?;
        let kind = if first == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(first, u64::from(MAX_LEVEL)).ok_or(bad("bad level"))?;
            TileKind::Hashes {
                level: u8::try_from(level).map_err(|_| bad("bad level"))?,
            }
        };
        let (index_str, width) = match rest.split_once(".p/") {
            None => (rest, TILE_WIDTH),
            Some((idx, w)) => {
                let w = parse_decimal(w, u64::from(TILE_WIDTH - 1)).ok_or(bad("bad width"))?;
                if w == 0 {
                    return Err(bad("bad width"));
                }
                (idx, u32::try_from(w).map_err(|_| bad("bad width"))?)
            }
        };
        let index = parse_index(index_str).map_err(bad)?;
        TilePath::new(kind, index, width).map_err(|_| bad("invalid tile"))
    }

    /// The path relative to the log prefix.
    pub fn to_path(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TileKind::Hashes { level } => write!(f, "tile/{level}/")?,
            TileKind::Entries => write!(f, "tile/entries/")?,
        }
        f.write_str(&encode_index(self.index))?;
        if self.is_partial() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

/// Encodes `<N>` in 3-digit elements: 1234067 → `x001/x234/067`.
pub fn encode_index(n: u64) -> String {
    let mut elements = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        elements.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    elements.reverse();
    elements.join("/")
}

/// Parses `<N>` as written by [`encode_index`]; returns the broken rule.
pub fn parse_index(s: &str) -> Result<u64, &'static str> {
    let elements: Vec<&str> = s.split('/').collect();
    if elements.len() > MAX_INDEX_ELEMENTS {
        return Err("index has too many elements");
    }
    let last = elements.len() - 1;
    let mut n: u64 = 0;
    for (i, el) in elements.iter().enumerate() {
        let digits = if i < last {
            el.strip_prefix('x').ok_or("index element lacks x prefix")?
        } else {
            el
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("index element is not 3 digits");
        }
        if i == 0 && i < last && digits == "000" {
            return Err("index has a leading x000 element");
        }
        let d: u64 = digits
            .parse()
            .map_err(|_| "index element is not 3 digits")?;
        n = n
            .checked_mul(1000)
            .and_then(|n| n.checked_add(d))
            .ok_or("index overflows u64")?;
    }
    Ok(n)
}

/// Decimal ASCII without sign or leading zeroes, at most `max`.
fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(level: u8, index: u64, width: u32) -> TilePath {
        TilePath::new(TileKind::Hashes { level }, index, width).unwrap()
    }

    /// The example in C2SP tlog-tiles, "Merkle Tree" section.
    #[test]
    fn spec_example_index_1234067() {
        assert_eq!(encode_index(1_234_067), "x001/x234/067");
        assert_eq!(parse_index("x001/x234/067"), Ok(1_234_067));
        assert_eq!(hashes(0, 1_234_067, 256).to_path(), "tile/0/x001/x234/067");
        let e = TilePath::new(TileKind::Entries, 1_234_067, 5).unwrap();
        assert_eq!(e.to_path(), "tile/entries/x001/x234/067.p/5");
        assert_eq!(TilePath::parse("tile/entries/x001/x234/067.p/5"), Ok(e));
    }

    /// Rule check by enumeration: every index near each 3-digit boundary and
    /// every width round-trips and matches a from-the-rules spelling.
    #[test]
    fn round_trip_rules_exhaustive_near_boundaries() {
        let mut idx = vec![0u64, 1, 999, 1000, 1001, 999_999, 1_000_000, u64::MAX];
        for p in 0..7 {
            let b = 1000u64.pow(p);
            idx.extend([b.saturating_sub(1), b, b + 1, b.saturating_mul(999)]);
        }
        for n in idx {
            let s = encode_index(n);
            let digits: String = s.split('/').map(|e| e.trim_start_matches('x')).collect();
            assert_eq!(
                digits.trim_start_matches('0').parse::<u64>().unwrap_or(0),
                n
            );
            for level in [0u8, 1, 7, 63] {
                for w in [1u32, 2, 128, 255, 256] {
                    let t = hashes(level, n, w);
                    assert_eq!(TilePath::parse(&t.to_path()), Ok(t), "{}", t);
                    assert_eq!(t.to_path().ends_with(&format!(".p/{w}")), w < 256);
                }
            }
        }
        for n in 0..3000u64 {
            let t = TilePath::new(TileKind::Entries, n, 256).unwrap();
            assert_eq!(TilePath::parse(&t.to_path()), Ok(t));
        }
    }

    #[test]
    fn rejects_malformed_paths() {
        let bad = [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "tiles/0/000",
            "/tile/0/000",
            "tile/64/000",
            "tile/00/000",
            "tile/+1/000",
            "tile/-1/000",
            "tile/8/0/000",
            "tile/0/00",
            "tile/0/0000",
            "tile/0/x000",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x1/002",
            "tile/0/xx01/002",
            "tile/0/x001/x002",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/05",
            "tile/0/000.p/",
            "tile/0/000.p",
            "tile/0/000.p/5/6",
            "tile/0/000/",
            "tile/data/000",
            "tile/entries/abc",
            "tile/entries/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x001/x002/x003/x004/x005/x006/x007/008",
            "tile/4/0/001",
        ];
        for p in bad {
            assert!(TilePath::parse(p).is_err(), "accepted {p:?}");
        }
        assert_eq!(
            TilePath::parse("tile/entries/x018/x446/x744/x073/x709/x551/615").map(|t| t.index()),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn constructor_rejects_impossible_tiles() {
        assert!(TilePath::new(TileKind::Hashes { level: 64 }, 0, 1).is_err());
        assert!(TilePath::new(TileKind::Entries, 0, 0).is_err());
        assert!(TilePath::new(TileKind::Entries, 0, 257).is_err());
    }
}
