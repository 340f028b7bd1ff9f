package revocation

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"
)

// builder collects serials of one issuer in arrival order, in chunks (no
// large reallocation), tracking per segment count, min and max, and builds
// the compact segments at the end by a counting scatter into buckets
// followed by small per-bucket sorts: no global sort, no second copy of
// the values.
type builder struct {
	short [9]*collector
	long  map[string]*collector // key: serial length byte, then prefix
}

type collector struct {
	key      segKey
	chunks   [][]uint64 // sealed chunks
	cur      []uint64   // the chunk being filled
	n        int        // values in sealed chunks
	min, max uint64     // over sealed chunks (valid when n > 0)
}

const maxChunk = 1 << 20

func newBuilder() *builder { return &builder{long: map[string]*collector{}} }

// add appends one value: the per-entry hot path, kept to an append.
func (c *collector) add(v uint64) {
	if len(c.cur) == cap(c.cur) {
		c.grow()
	}
	c.cur = append(c.cur, v)
}

// grow seals the current chunk and starts one twice as large (up to
// maxChunk), so small segments stay small and large ones never copy.
func (c *collector) grow() {
	size := 64
	if c.cur != nil {
		size = min(maxChunk, 2*cap(c.cur))
		c.seal()
	}
	c.cur = make([]uint64, 0, size)
}

// seal folds the current chunk into count, min and max.
func (c *collector) seal() {
	if len(c.cur) == 0 {
		c.cur = nil
		return
	}
	lo, hi := c.cur[0], c.cur[0]
	if c.n > 0 {
		lo, hi = min(lo, c.min), max(hi, c.max)
	}
	for _, v := range c.cur {
		lo, hi = min(lo, v), max(hi, v)
	}
	c.min, c.max = lo, hi
	c.n += len(c.cur)
	c.chunks = append(c.chunks, c.cur)
	c.cur = nil
}

// add records one serial (DER INTEGER contents, 1…maxSerialLen bytes).
func (b *builder) add(serial []byte) {
	l := len(serial)
	if l <= 8 {
		c := b.short[l]
		if c == nil {
			c = &collector{key: segKey{serialLen: l}}
			b.short[l] = c
		}
		if l == 8 {
			c.add(binary.BigEndian.Uint64(serial))
		} else {
			c.add(beUint(serial))
		}
		return
	}
	// Map key: length byte then prefix; the lookup does not allocate.
	var kb [maxSerialLen]byte
	kb[0] = byte(l)
	copy(kb[1:], serial[:l-8])
	c := b.long[string(kb[:l-7])]
	if c == nil {
		k, _ := keyOf(serial)
		c = &collector{key: k}
		b.long[string(kb[:l-7])] = c
	}
	c.add(beUint(serial[l-8:]))
}

// group builds the collected serials into a group, without the serials in
// remove.
func (b *builder) group(remove map[string]bool) (gr group, n int) {
	var cs []*collector
	for _, c := range b.short {
		if c != nil {
			cs = append(cs, c)
		}
	}
	for _, c := range b.long {
		cs = append(cs, c)
	}
	b.short = [9]*collector{}
	b.long = nil
	for _, c := range cs {
		g := c.build(remove)
		if g == nil {
			continue
		}
		n += g.n
		if g.serialLen <= 8 {
			gr.short[g.serialLen] = g
		} else {
			gr.long = append(gr.long, g)
		}
	}
	slices.SortFunc(gr.long, func(a, b *segment) int {
		if c := cmp.Compare(a.serialLen, b.serialLen); c != 0 {
			return c
		}
		return bytes.Compare(a.prefix, b.prefix)
	})
	return gr, n
}

// build turns the collected values into a segment; nil if none remain.
func (c *collector) build(remove map[string]bool) *segment {
	c.seal()
	if c.n == 0 {
		return nil
	}
	g := &segment{serialLen: c.key.serialLen, prefix: []byte(c.key.prefix)}
	g.min = c.min
	g.span = c.max - c.min
	sb := uint(bits.Len64(g.span))
	n := c.n
	// Bucket bits: the smallest encoding with at most ~64 entries per
	// bucket on average. The offset table stays small (about 1 MB for 10M
	// random serials, so it tends to stay in cache) and a lookup
	// interpolates within the bucket, touching one or two cache lines of
	// the packed values.
	best, bestSize := uint(0), uint64(1<<63)
	for bb := uint(0); bb <= sb && bb <= 26; bb++ {
		if uint64(n)>>bb > 64 && bb < sb && bb < 26 {
			continue
		}
		w := uint64((sb - bb + 7) / 8)
		size := 4*(uint64(1)<<bb) + w*uint64(n)
		if size < bestSize {
			best, bestSize = bb, size
		}
	}
	g.bucketBits, g.shift = best, sb-best
	g.width = int((g.shift + 7) / 8)
	nb := 1 << best
	// Counting pass: bucket sizes, then start offsets; and per chunk the
	// sizes of 256 groups of consecutive buckets (bucket >> gshift).
	gshift := uint(0)
	if best > 8 {
		gshift = best - 8
	}
	start := make([]uint32, nb+1)
	groups := make([][257]int, len(c.chunks))
	maxChunkLen := 0
	for i, ch := range c.chunks {
		maxChunkLen = max(maxChunkLen, len(ch))
		cnt := &groups[i]
		for _, v := range ch {
			bk := (v - g.min) >> g.shift
			start[bk+1]++
			cnt[bk>>gshift+1]++
		}
		for k := 1; k <= 256; k++ {
			cnt[k] += cnt[k-1]
		}
	}
	maxBucket := 0
	for i := 1; i <= nb; i++ {
		maxBucket = max(maxBucket, int(start[i]))
		start[i] += start[i-1]
	}
	// Scatter the low parts into their buckets. Writing straight into a
	// large packed array would miss the caches on nearly every entry, so
	// each chunk is first partitioned by group (a stable counting scatter
	// into a spare buffer, 256 sequential write streams); then group by
	// group, whose packed range is small enough to stay in cache, the low
	// parts are written at their bucket cursors.
	g.packed = make([]byte, n*g.width+8)
	cur := slices.Clone(start[:nb])
	mask := uint64(1)<<g.shift - 1
	spare := make([]uint64, maxChunkLen)
	for i, ch := range c.chunks {
		next := [256]int(groups[i][:256])
		dst := spare[:len(ch)]
		for _, v := range ch {
			k := ((v - g.min) >> g.shift) >> gshift
			dst[next[k]] = v
			next[k]++
		}
		if cap(ch) >= maxChunkLen { // swap buffers: the old chunk is the next spare
			c.chunks[i], spare = dst, ch[:cap(ch)]
		} else { // the small early chunks: copy back
			copy(ch, dst)
		}
	}
	spare = nil
	for grp := 0; grp < 256; grp++ {
		for i, ch := range c.chunks {
			for _, v := range ch[groups[i][grp]:groups[i][grp+1]] {
				d := v - g.min
				b := d >> g.shift
				putBE(g.packed[int(cur[b])*g.width:], d&mask, g.width)
				cur[b]++
			}
		}
	}
	c.chunks = nil
	cur = nil
	// Sort each bucket, drop duplicates and removed serials, and compact
	// towards the front; rewrite the offsets.
	g.offsets = make([]byte, 4*(nb+1))
	scratch := make([]uint64, 0, maxBucket)
	w := 0
	var tmp [maxSerialLen]byte
	for b := 0; b < nb; b++ {
		binary.LittleEndian.PutUint32(g.offsets[4*b:], uint32(w))
		lo, hi := int(start[b]), int(start[b+1])
		if lo == hi {
			continue
		}
		scratch = scratch[:0]
		for i := lo; i < hi; i++ {
			scratch = append(scratch, g.at(i))
		}
		sortSmall(scratch)
		for i, low := range scratch {
			if i > 0 && low == scratch[i-1] {
				continue
			}
			if len(remove) > 0 && remove[string(serialOf(tmp[:0], c.key, g.min+(uint64(b)<<g.shift|low)))] {
				continue
			}
			putBE(g.packed[w*g.width:], low, g.width)
			w++
		}
	}
	binary.LittleEndian.PutUint32(g.offsets[4*nb:], uint32(w))
	if w == 0 {
		return nil
	}
	clear(g.packed[w*g.width:])
	g.packed = g.packed[:w*g.width+8]
	g.n = w
	return g
}

// serialOf rebuilds a serial from its segment key and value.
func serialOf(dst []byte, k segKey, v uint64) []byte {
	dst = append(dst, k.prefix...)
	tail := min(k.serialLen, 8)
	for i := tail - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*uint(i))))
	}
	return dst
}

// sortSmall sorts a bucket: insertion sort for the usual handful of
// values, the library sort beyond.
func sortSmall(a []uint64) {
	if len(a) > 32 {
		slices.Sort(a)
		return
	}
	for i := 1; i < len(a); i++ {
		v := a[i]
		j := i
		for j > 0 && a[j-1] > v {
			a[j] = a[j-1]
			j--
		}
		a[j] = v
	}
}
