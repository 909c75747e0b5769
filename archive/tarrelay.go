package archive

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"sort"
	"time"
)

// The volumes' sha256 is one pass over the stream in order. Read back from the volumes, it is a second
// read of every byte, and on a busy machine it falls behind the copy and leaves most of the stream to
// hash after the last blob, on one core. So the goroutine streaming the blob at which the hash has
// arrived (every slot before it complete and hashed) takes the hash over for its own slot (a relay):
// it hashes the slot's header from memory, reads back what it already wrote, and hashes the rest of
// its bytes as they stream in, straight from its buffer. A blob that fails hands the hash back as it
// found it (the sha256 state is restored), and the slot is hashed later like any other.

// The hash is one goroutine's work on one core at a time; the copy is many streams. On a machine
// whose cores the copy (and a registry on the same host) keeps busy, the hash falls behind, and what
// it has left when the last blob lands is hashed alone, on one core, while the other cores idle. So a
// stream whose slot starts more than maxHashLag ahead of the hash waits before it writes, as long as
// the hash is moving (the slot it has arrived at is streaming in, or complete and being read back):
// the copy gives the hash some of the CPU, and the tail is short. The slot the hash has arrived at is
// never held back, so waiting always ends.

// maxHashLag is how far ahead of the volume hash a slot may start and be written at once. Measured at
// full scale (1 GiB, 2 shared cores, 5 rounds): 128 MiB gave the fastest tar save; 32 MiB starved the
// copy, 320 MiB left more of the hash for the end.
const maxHashLag = 128 << 20

// throttle waits while slot i starts more than w.maxLag ahead of the volume hash and the hash is
// moving; it returns when ctx ends or the hash has stopped.
func (w *TarWriter) throttle(ctx context.Context, i int) {
	off := w.slots[i].off
	for ctx.Err() == nil && !w.hashDone.Load() {
		at := w.relay.reached.Load()
		if off-at <= w.maxLag {
			return
		}
		// The slot the hash has arrived at: the first one that ends after it.
		j := sort.Search(len(w.slots), func(k int) bool { return w.slots[k].next > at })
		if j == len(w.slots) {
			return
		}
		w.mu.Lock()
		complete := w.state[j].verified
		w.mu.Unlock()
		if !complete && !w.streaming[j].Load() {
			return // nothing moves the hash now: waiting would not end
		}
		time.Sleep(time.Millisecond)
	}
}

// claim is a relay's hold on the volume hash for slot i, with the state to restore if the blob fails.
type claim struct {
	slot  int
	pos   int64
	sums  int
	state []byte
}

// write hashes p, the next bytes of the stream, volume by volume. The caller holds h.mu.
func (h *volumeHasher) write(p []byte) {
	for len(p) > 0 {
		n := int64(len(p))
		if h.v.size > 0 {
			n = min(n, h.v.size-h.pos%h.v.size)
		}
		h.cur.Write(p[:n])
		h.pos += n
		p = p[n:]
		if h.v.size > 0 && h.pos%h.v.size == 0 {
			h.sums = append(h.sums, hex.EncodeToString(h.cur.Sum(nil)))
			h.cur.Reset()
		}
	}
	h.reached.Store(h.pos)
}

// tryClaim hands the hash to slot i's stream, of which written bytes are in the volumes, when the
// hash has arrived at the slot and nobody holds it; it hashes the header and those bytes. nil: not
// now (the caller tries again with its next buffer).
func (w *TarWriter) tryClaim(i int, written int64) *claim {
	h := w.relay
	if !h.mu.TryLock() {
		return nil
	}
	defer h.mu.Unlock()
	s := w.slots[i]
	if h.owner >= 0 || h.pos != s.off {
		return nil
	}
	state, err := h.cur.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil
	}
	c := &claim{slot: i, pos: h.pos, sums: len(h.sums), state: state}
	h.write(s.hdr)
	if err := h.to(s.data + written); err != nil {
		h.restore(c)
		return nil
	}
	h.owner = i
	return c
}

// feed hashes p, the bytes of the claimed slot that just streamed in.
func (w *TarWriter) feed(p []byte) {
	w.relay.mu.Lock()
	w.relay.write(p)
	w.relay.mu.Unlock()
}

// release ends c: a complete slot's padding is hashed and the hash stays after it; a failed slot's
// hash is put back as it was before the claim.
func (w *TarWriter) release(c *claim, complete bool) {
	if c == nil {
		return
	}
	h := w.relay
	h.mu.Lock()
	defer h.mu.Unlock()
	if complete {
		h.write(make([]byte, pad(w.slots[c.slot].desc.Size)))
	} else {
		h.restore(c)
	}
	h.owner = -1
}

// restore puts the hash back as it was when c was taken. The caller holds h.mu.
func (h *volumeHasher) restore(c *claim) {
	cur := sha256.New()
	if err := cur.(encoding.BinaryUnmarshaler).UnmarshalBinary(c.state); err != nil {
		panic("archive: restoring a sha256 state it marshalled: " + err.Error())
	}
	h.cur, h.pos, h.sums = cur, c.pos, h.sums[:c.sums]
	h.reached.Store(h.pos)
}
