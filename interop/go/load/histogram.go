package main

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of two,
// so a recorded value is off by under 1/2^subBits (0.8%) of itself.
const subBits = 7

// histogram counts latencies in log-linear buckets of nanoseconds: bounded
// memory whatever the run's length, as HDR histograms do.
type histogram struct {
	counts [64 << subBits]uint64
	total  uint64
	max    int64
}

// bucket is the index of value v (ns, at least 0).
func bucket(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	exp := bits.Len64(v) - subBits - 1
	return (exp+1)<<subBits + int(v>>uint(exp)) - 1<<subBits
}

// lowest is the smallest value of bucket i.
func lowest(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	exp := i>>subBits - 1
	return uint64(i&(1<<subBits-1)+1<<subBits) << uint(exp)
}

func (h *histogram) record(d time.Duration) {
	v := d.Nanoseconds()
	if v < 0 {
		v = 0
	}
	h.counts[bucket(uint64(v))]++
	h.total++
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	if o.max > h.max {
		h.max = o.max
	}
}

// quantileUs is the value at quantile q in microseconds (0 when empty).
func (h *histogram) quantileUs(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return float64(lowest(i)) / 1e3
		}
	}
	return float64(h.max) / 1e3
}
