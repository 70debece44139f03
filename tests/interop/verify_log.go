// verify_log is an independent client for proofmesh's transparency log,
// written against Go's golang.org/x/mod/sumdb/{note,tlog} (the reference
// implementation of the tlog-tiles / signed-note formats). It checks that a
// running log's checkpoint signature verifies, that its C2SP tiles hash up to
// the signed root, and that every entry's inclusion proof (computed by Go
// from our tiles) verifies, plus a consistency proof from half the tree.
//
// Usage: go run verify_log.go -url http://HOST/log -vkey VKEY
package main

import (
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var base string

func get(path string) ([]byte, error) {
	resp, err := http.Get(base + "/" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// c2spPath maps Go's tile path (tile/H/L/N[.p/W]) to C2SP tlog-tiles
// (tile/L/N[.p/W]); the index encoding is the same.
func c2spPath(t tlog.Tile) string {
	return strings.Replace(t.Path(), fmt.Sprintf("tile/%d/", t.H), "tile/", 1)
}

type reader struct{}

func (reader) Height() int { return 8 }

func (reader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := get(c2spPath(t))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (reader) SaveTiles([]tlog.Tile, [][]byte) {}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL "+format+"\n", args...)
	os.Exit(1)
}

func parseCheckpoint(text string) (string, tlog.Tree) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		die("checkpoint has too few lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		die("checkpoint size: %v", err)
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		die("checkpoint root: %v", err)
	}
	var root tlog.Hash
	copy(root[:], h)
	return lines[0], tlog.Tree{N: n, Hash: root}
}

func entries(size int64) [][]byte {
	var all [][]byte
	for n := int64(0); n < size; n += 256 {
		w := size - n
		path := fmt.Sprintf("tile/entries/%s", tlog.Tile{H: 8, L: 0, N: n / 256, W: 256}.Path()[len("tile/8/0/"):])
		if w < 256 {
			path = fmt.Sprintf("%s.p/%d", path, w)
		}
		b, err := get(path)
		if err != nil {
			die("%v", err)
		}
		for len(b) > 0 {
			l := int(binary.BigEndian.Uint16(b))
			all = append(all, b[2:2+l])
			b = b[2+l:]
		}
	}
	return all
}

func main() {
	url := flag.String("url", "", "log URL prefix")
	vkey := flag.String("vkey", "", "checkpoint verifier key")
	flag.Parse()
	base = strings.TrimRight(*url, "/")
	v, err := note.NewVerifier(*vkey)
	if err != nil {
		die("verifier key: %v", err)
	}
	msg, err := get("checkpoint")
	if err != nil {
		die("%v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		die("checkpoint signature: %v", err)
	}
	origin, tree := parseCheckpoint(n.Text)
	if origin != v.Name() {
		die("origin %q is not the key name %q", origin, v.Name())
	}
	thr := tlog.TileHashReader(tree, reader{})
	all := entries(tree.N)
	if int64(len(all)) != tree.N {
		die("%d entries for size %d", len(all), tree.N)
	}
	for i, e := range all {
		p, err := tlog.ProveRecord(tree.N, int64(i), thr)
		if err != nil {
			die("prove %d: %v", i, err)
		}
		if err := tlog.CheckRecord(p, tree.N, tree.Hash, int64(i), tlog.RecordHash(e)); err != nil {
			die("inclusion of entry %d: %v", i, err)
		}
	}
	old := tree.N / 2
	if old > 0 {
		oldHash, err := tlog.TreeHash(old, thr)
		if err != nil {
			die("tree hash %d: %v", old, err)
		}
		p, err := tlog.ProveTree(tree.N, old, thr)
		if err != nil {
			die("prove tree: %v", err)
		}
		if err := tlog.CheckTree(p, tree.N, tree.Hash, old, oldHash); err != nil {
			die("consistency %d -> %d: %v", old, tree.N, err)
		}
	}
	fmt.Printf("GO VERIFIED origin=%s size=%d entries=%d\n", origin, tree.N, len(all))
}
