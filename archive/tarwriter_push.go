package archive

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Exists reports whether desc's slot holds it, complete and right. A slot an earlier run completed is
// hashed again from the volume first; one that does not hash to its name is cut back out (empty again).
func (w *TarWriter) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	i, ok := w.byName[desc.Digest]
	if !ok || w.slots[i].desc.Size != desc.Size {
		return false, nil
	}
	w.locks[i].Lock()
	defer w.locks[i].Unlock()
	st := w.state[i]
	switch {
	case st.verified:
		return true, nil
	case !st.done:
		return false, nil
	}
	v, err := w.hashSlot(ctx, i, desc.Size)
	if err != nil {
		return false, err
	}
	if !v.Verified() {
		return false, w.cut(i)
	}
	w.state[i].verified = true
	return true, nil
}

// hashSlot reads the first n bytes of slot i's data back from the volumes into a verifier of its digest.
func (w *TarWriter) hashSlot(ctx context.Context, i int, n int64) (digest.Verifier, error) {
	s := w.slots[i]
	v := s.desc.Digest.Verifier()
	buf := copyBuffer(n)
	defer buf.free()
	for off := int64(0); off < n; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := min(int64(len(buf.b)), n-off)
		if err := w.vf.ReadAt(buf.b[:k], s.data+off); err != nil {
			return nil, fmt.Errorf("check blob %s in %s: %w", s.desc.Digest, w.vf.base, err)
		}
		v.Write(buf.b[:k])
		off += k
	}
	return v, nil
}

// cut empties slot i: its bytes stay until they are overwritten, and nothing counts them.
func (w *TarWriter) cut(i int) error {
	w.state[i] = slotState{}
	return w.record("have " + w.slotName(i) + " 0")
}

// Push writes the content read from r into desc's slot: PushResumable with r as the only source, so
// what an interrupted run kept is skipped in r.
func (w *TarWriter) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	_, err := w.PushResumable(ctx, desc, onlySource(r))
	return err
}

// PushResumable writes the blob desc straight into its slot, hashing it as it streams in. What an
// earlier attempt kept of it (journaled) is hashed again from the volume and open is asked only for the
// rest, from that offset; when open's reader fails, what arrived is kept for the next attempt. A blob
// that does not match its size or digest is cut back out. It returns how many bytes open's reader
// delivered.
func (w *TarWriter) PushResumable(ctx context.Context, desc ocispec.Descriptor, open func(offset int64) (io.ReadCloser, error)) (int64, error) {
	i, ok := w.byName[desc.Digest]
	if !ok || w.slots[i].desc.Size != desc.Size {
		return 0, fmt.Errorf("tar %s: blob %s (%d bytes) was not planned", w.vf.base, desc.Digest, desc.Size)
	}
	w.locks[i].Lock()
	defer w.locks[i].Unlock()
	st := w.state[i]
	if st.verified {
		return 0, nil
	}
	have := st.have
	if st.done {
		have = 0 // an earlier run's, not hashed yet: written again
	}
	v, err := w.hashSlot(ctx, i, have)
	if err != nil {
		v, have = desc.Digest.Verifier(), 0
	}
	rc, err := open(have)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	got, err := w.stream(i, v, have, rc)
	if err != nil {
		return got, err
	}
	if !v.Verified() {
		return got, errJoin(&DigestMismatchError{Expected: desc.Digest}, w.cut(i))
	}
	return got, w.complete(i)
}

// stream copies r into slot i from offset have on, through v, recording progress every journalEvery
// bytes and when r fails. It returns the bytes read from r.
func (w *TarWriter) stream(i int, v io.Writer, have int64, r io.Reader) (int64, error) {
	s := w.slots[i]
	pb := copyBuffer(s.desc.Size - have)
	defer pb.free()
	buf := pb.b
	pos, last := have, have
	progress := func() error {
		if pos == last {
			return nil
		}
		last = pos
		w.state[i] = slotState{have: pos} // a retry in this run resumes here too, not only the next run
		return w.record("have " + w.slotName(i) + " " + strconv.FormatInt(pos, 10))
	}
	for {
		n, rerr := r.Read(buf)
		if pos+int64(n) > s.desc.Size {
			return pos - have, errJoin(fmt.Errorf("blob %s: more than the %d bytes the descriptor says; the source is damaged or changed, fetch again", s.desc.Digest, s.desc.Size), w.cut(i))
		}
		if n > 0 {
			if err := w.vf.WriteAt(buf[:n], s.data+pos); err != nil {
				return pos - have, errJoin(err, progress())
			}
			v.Write(buf[:n])
			pos += int64(n)
			if pos-last >= journalEvery {
				if err := progress(); err != nil {
					return pos - have, err
				}
			}
		}
		switch {
		case rerr == io.EOF && pos != s.desc.Size:
			return pos - have, errJoin(&ShortBlobError{Digest: s.desc.Digest, Got: pos, Size: s.desc.Size}, w.cut(i))
		case rerr == io.EOF:
			return pos - have, nil
		case rerr != nil:
			return pos - have, errJoin(rerr, progress()) // kept: the next attempt resumes from here
		}
	}
}

// errJoin returns err, or err and the failure to record it.
func errJoin(err, also error) error {
	if also == nil {
		return err
	}
	return fmt.Errorf("%w (and %v)", err, also)
}
