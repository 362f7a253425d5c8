// The walk over a weight tile's lane words (docs/overlay.md "The kernel"): what each word of the
// compacted stream is, advanced one word per call by carries only. The tile check (W_CHECK) and
// the MAC loop run the same walk, so the MAC never meets a header the check did not accept.
#pragma once

#include "tpq_layer.hpp"

namespace tpq {

// One lane word of a tile: a header word (a bubble) or a body word for filter o.
struct WordOp {
  bool body, first, last;  // first/last: trit plane T-1 / plane 0 of this (filter, word)
  uint32_t o, q, v, di, dj, valid;  // valid: lanes of word v that hold group elements
};

// The position inside a tile, advanced one lane word per iteration by carries only. W_CHECK and
// the MAC loop run the same walk, so the MAC never meets a header the check did not accept.
struct Walk {
  const uint8_t* wbuf;
  uint32_t nf, ng, nq, trits, cin, kernel, kk, limit;  // limit: the tile's bytes
  uint32_t seen, hdr_pos, hdr_left, body_left;
  int32_t prev_q;
  uint32_t q, nk, j, t, v, di, dj, gc;  // gc: the group's channels, the valid lanes of each word
  bool bad;

  void start(const uint8_t* w, const Desc& d, uint32_t bytes) {
    wbuf = w;
    limit = bytes;
    nf = le16(w);
    ng = le16(w + 2);
    nq = groups(d.in_c);
    trits = d.trits;
    cin = d.in_c;
    kernel = d.kernel;
    kk = d.kernel * d.kernel;
    seen = hdr_pos = hdr_left = body_left = 0;
    prev_q = -1;
    q = j = t = v = di = dj = gc = 0;
    nk = 1;
    bad = false;
  }

  WordOp step(uint32_t pos) {
    if (hdr_left == 0 && body_left == 0) {  // a group header starts at this word
      const bool room = pos + 4 <= limit;  // a header never reads past the tile
      const uint32_t hq = room ? le16(wbuf + pos) : 0, hn = room ? le16(wbuf + pos + 2) : 0;
      const bool ok = room && seen < ng && static_cast<int32_t>(hq) > prev_q && hq < nq && hn >= 1 && hn <= nf &&
                      pos + pad_lane(4 + 2 * hn) <= limit;
      bad = bad || !ok;
      q = ok ? hq : 0;
      nk = ok ? hn : 1;
      prev_q = static_cast<int32_t>(hq);
      hdr_pos = pos;
      hdr_left = pad_lane(4 + 2 * nk) / LANE_BYTES;  // a shift: LANE_BYTES is a power of two
      gc = group_channels(cin, q);
      body_left = kk * nk * trits;  // one lane word per tap: lane l is channel q*G + l
      j = v = di = dj = 0;
      t = trits - 1;
      ++seen;
    }
    WordOp op{};
    op.body = hdr_left == 0;
    if (!op.body) {
      --hdr_left;
    } else {
      op.o = le16(wbuf + hdr_pos + 4 + 2 * j);
      op.q = q;
      op.v = v;
      op.di = di;
      op.dj = dj;
      op.valid = gc;
      op.first = t == trits - 1;
      op.last = t == 0;
      --body_left;
      if (t > 0) {
        --t;
      } else {
        t = trits - 1;
        if (++j == nk) {  // next lane word of the group: the next tap
          j = 0;
          ++v;
          if (++dj == kernel) {
            dj = 0;
            ++di;
          }
        }
      }
    }
    return op;
  }
  bool finished() const { return !bad && seen == ng && hdr_left == 0 && body_left == 0; }
};

}  // namespace tpq
