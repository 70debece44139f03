//! Tests for C2SP tlog-tiles hash tiles and tile enumeration (`src/tree.rs`,
//! `src/paths.rs`): the spec's "Partial Tiles" examples, tile contents
//! against independently computed Merkle Tree Hashes (RFC 6962 §2.1), and the
//! Go sumdb tile-path vectors for the shared `<N>` encoding.

mod common;

use std::collections::BTreeSet;

use common::{json, naive_mth};
use proofmesh_tlog::paths::encode_index;
use proofmesh_tlog::{
    leaf_hash, new_tile_paths, tiles_for_size, Hash, TileKind, TilePath, TlogError, Tree,
};

fn tree_of(n: u64) -> (Tree, Vec<Hash>) {
    let mut t = Tree::new();
    let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for h in &leaves {
        t.append(*h).unwrap();
    }
    (t, leaves)
}

/// `(full tiles, partial width)` at hash level `level`.
fn shape(tiles: &[TilePath], kind: TileKind) -> (usize, Option<u32>) {
    let at: Vec<_> = tiles.iter().filter(|t| t.kind() == kind).collect();
    let full = at.iter().filter(|t| !t.is_partial()).count();
    let partial: Vec<u32> = at
        .iter()
        .filter(|t| t.is_partial())
        .map(|t| t.width())
        .collect();
    assert!(partial.len() <= 1);
    (full, partial.first().copied())
}

/// C2SP tlog-tiles, "Partial Tiles": "a tree of size 70,000 will be
/// represented by 273 full level 0 tiles, one partial level 0 tile of width
/// 112, one full level 1 tile, one partial level 1 tile of width 17, and one
/// partial level 2 tile of width 1", and "a tree of size 256 will be
/// represented by a full level 0 tile and a partial level 1 tile of width 1".
#[test]
fn spec_partial_tile_examples() {
    let t = tiles_for_size(70_000);
    assert_eq!(shape(&t, TileKind::Hashes { level: 0 }), (273, Some(112)));
    assert_eq!(shape(&t, TileKind::Entries), (273, Some(112)));
    assert_eq!(shape(&t, TileKind::Hashes { level: 1 }), (1, Some(17)));
    assert_eq!(shape(&t, TileKind::Hashes { level: 2 }), (0, Some(1)));
    assert_eq!(t.len(), 2 * 274 + 2 + 1);

    let t = tiles_for_size(256);
    assert_eq!(shape(&t, TileKind::Hashes { level: 0 }), (1, None));
    assert_eq!(shape(&t, TileKind::Hashes { level: 1 }), (0, Some(1)));
    assert_eq!(t.len(), 3);
    assert!(tiles_for_size(0).is_empty());
}

/// Level-l tile n, hash i is MTH(D[(n*256+i)*256^l : (n*256+i+1)*256^l]).
#[test]
fn tile_contents_are_subtree_hashes() {
    let (t, leaves) = tree_of(70_000);
    for tile in tiles_for_size(70_000) {
        let TileKind::Hashes { level } = tile.kind() else {
            continue;
        };
        if level == 0 && tile.index() % 50 != 0 && !tile.is_partial() {
            continue; // sample full level-0 tiles; check every other tile
        }
        let data = t.tile_data(70_000, tile).unwrap();
        assert_eq!(data.len(), tile.width() as usize * 32);
        let span = 256usize.pow(u32::from(level));
        for (i, chunk) in data.chunks(32).enumerate() {
            let start = (tile.index() as usize * 256 + i) * span;
            assert_eq!(
                chunk,
                naive_mth(&leaves[start..start + span]).0,
                "{tile} hash {i}"
            );
        }
    }
}

#[test]
fn tile_data_for_older_sizes_and_bad_requests() {
    let (t, leaves) = tree_of(600);
    let p = |level, index, width| TilePath::new(TileKind::Hashes { level }, index, width).unwrap();
    // The partial tile that size 300 implies is the prefix of full tile 1 now.
    let old = t.tile_data(300, p(0, 1, 44)).unwrap();
    assert_eq!(old, t.tile_data(600, p(0, 1, 256)).unwrap()[..44 * 32]);
    assert_eq!(&old[..32], leaves[256].0);
    let bad = [
        (600, p(0, 2, 89)), // size 600 implies width 88
        (600, p(0, 3, 1)),  // beyond the tree
        (600, p(1, 0, 3)),  // level 1 has width 2 at 600
        (600, p(3, 0, 1)),
        (601, p(0, 0, 256)), // size beyond the tree
    ];
    for (size, tile) in bad {
        assert!(t.tile_data(size, tile).is_err(), "{size} {tile}");
    }
    let bundle = TilePath::new(TileKind::Entries, 0, 256).unwrap();
    assert!(matches!(
        t.tile_data(600, bundle),
        Err(TlogError::BadTile { .. })
    ));
    assert_eq!(t.tile_data(600, p(0, 2, 88)).unwrap().len(), 88 * 32);
    assert_eq!(t.tile_data(600, p(1, 0, 2)).unwrap().len(), 64);
}

/// Tiles to publish on growth are exactly those present at the new size
/// and absent at the old one.
#[test]
fn new_tiles_are_the_set_difference() {
    let sizes = [
        0u64, 1, 2, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, 70_000, 131_072,
    ];
    for &old in &sizes {
        for &new in sizes.iter().filter(|&&n| n >= old) {
            let before: BTreeSet<_> = tiles_for_size(old).into_iter().collect();
            let want: BTreeSet<_> = tiles_for_size(new)
                .into_iter()
                .filter(|t| !before.contains(t))
                .collect();
            let got: BTreeSet<_> = new_tile_paths(old, new).unwrap().into_iter().collect();
            assert_eq!(got, want, "{old}->{new}");
        }
    }
    assert!(matches!(
        new_tile_paths(5, 4),
        Err(TlogError::SizesOutOfOrder { old: 5, new: 4 })
    ));
    let (t, _) = tree_of(300);
    let published = t.new_tiles(200, 300).unwrap();
    assert!(published
        .iter()
        .all(|(p, d)| matches!(p.kind(), TileKind::Entries) == d.is_none()));
    assert!(t.new_tiles(0, 301).is_err());
}

/// Go sumdb `tile/H/L/N` paths share the `<N>` encoding with C2SP; the Go
/// layout itself must not parse as a C2SP path.
#[test]
fn go_tile_path_vectors_share_index_encoding() {
    let v = json("mod/sumdb_tlog_vectors.json");
    let cases = v["go_sumdb_tile_paths_NOT_C2SP"].as_array().unwrap();
    let mut checked = 0;
    for c in cases {
        let path = c[0].as_str().unwrap();
        assert!(
            TilePath::parse(path).is_err(),
            "Go path {path} parsed as C2SP"
        );
        let Some(t) = c[1].as_array() else { continue };
        let (h, n, w) = (
            t[0].as_u64().unwrap(),
            t[2].as_u64().unwrap(),
            t[3].as_u64().unwrap(),
        );
        let mut want = encode_index(n);
        if w < 1 << h {
            want.push_str(&format!(".p/{w}"));
        }
        assert!(path.ends_with(&format!("/{want}")), "{path} vs {want}");
        checked += 1;
    }
    assert!(checked >= 5);
}
