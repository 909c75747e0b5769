package mirror

import (
	"context"
	"fmt"
	"os"

	"airlock.dev/airlock/archive"
)

// TarTarget is tar volumes (NAME.tar, or NAME.tar.000, .001, ... with a volume list) as a Copy target.
//
// How it keeps resume: blobs are received into a staging layout next to the output
// (NAME.tar.staging), which keeps partial blobs (.partial files, hashed again from disk and resumed
// from their offset) and complete ones across runs, so a killed tar save run again fetches only what
// it lacks. Each blob is appended to the volumes as soon as it is complete (archive.TarStream, fed by
// Layout.OnStored), so writing the tar overlaps fetching; Finish appends whatever an earlier run had
// stored, then index.json, last, and the volume list; only then is the staging layout removed.
//
// What this still costs: every blob is written twice on the output's disk (staging, then the
// volume) and read once from it, while the tar is written; the staging copy is what resume rests on.
// Streaming a blob straight into the volume while it is being hashed, with the staging file kept only
// for blobs that arrive while another one holds the tar writer, needs volumes that can be cut back to
// the last complete entry (a blob that fails its digest mid-entry) and reopened after a kill: not
// built yet.
type TarTarget struct {
	LayoutTarget
	out    string
	dir    string
	stream *archive.TarStream
}

// NewTarTarget opens the staging layout of out (NAME.tar), reusing what an earlier run left, and starts
// the tar stream of its blobs into volumes of volumeSize bytes (0: one file).
func NewTarTarget(out string, volumeSize int64) (*TarTarget, error) {
	dir := out + ".staging"
	layout, err := archive.CreateLayout(dir)
	if err != nil {
		return nil, err
	}
	stream, err := archive.StartTar(dir, out, volumeSize)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", out, err)
	}
	layout.OnStored = stream.Add
	return &TarTarget{LayoutTarget: LayoutTarget{Layout: layout}, out: out, dir: dir, stream: stream}, nil
}

// Finish writes what the stream has not yet written and index.json into the volumes, then the volume
// list, and removes the staging layout. Call it after Layout.Commit.
func (t *TarTarget) Finish(ctx context.Context) ([]archive.Volume, error) {
	s := t.stream
	t.stream = nil
	vols, err := s.Finish(ctx)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", t.out, err)
	}
	t.Layout.Discard()
	if err := os.RemoveAll(t.dir); err != nil {
		return nil, err
	}
	return vols, nil
}

// Abort removes the partial volumes, keeping the staging layout for the next run. It does nothing
// after Finish.
func (t *TarTarget) Abort() {
	if t.stream != nil {
		t.stream.Abort()
		t.stream = nil
	}
}
