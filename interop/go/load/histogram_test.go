package main

import (
	"testing"
	"time"
)

func TestBucketsAreContiguousAndTight(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 123456, 1 << 40, 1<<63 + 12345} {
		i := bucket(v)
		lo, next := lowest(i), lowest(i+1)
		if v < lo || (next > lo && v >= next) {
			t.Fatalf("value %d in bucket %d of [%d, %d)", v, i, lo, next)
		}
		if v > 0 && float64(v-lo)/float64(v) > 1.0/(1<<subBits) {
			t.Fatalf("value %d read as %d", v, lo)
		}
	}
}

func TestQuantiles(t *testing.T) {
	h := &histogram{}
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for q, want := range map[float64]float64{0.5: 500, 0.99: 990} {
		got := h.quantileUs(q)
		if got > want || got < want*0.99 {
			t.Fatalf("quantile %v: %v us, want about %v", q, got, want)
		}
	}
}
