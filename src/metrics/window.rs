//! A windowed HDR histogram for one latency series.
//!
//! Values are kept in microseconds with 2 significant digits (a value is known to within 1%),
//! from 1 µs to 1 h; larger values are clamped to 1 h and counted in [`WindowedHistogram::clamped`].
//!
//! Time is cut into UTC minutes. The current minute is live; when a value (or
//! [`WindowedHistogram::advance`]) arrives in a later minute, the live minute is frozen into a
//! compact run-length encoding of its non-empty buckets. Minute slices are kept for the last
//! hour, then merged into hourly roll-ups (kept for 24 h), then into daily roll-ups (kept for
//! 30 days), then dropped. Every value lives in exactly one slice, so windows never count twice.
//!
//! Why not a `Histogram<u32>` per minute: one 1 µs..1 h, 2-digit histogram is 3,328 counters
//! (13 KB). An hour of those for 1,000 series would be 800 MB; an encoded minute holding 60
//! values is ~100 bytes. For the same reason the live minute starts as a small buffer of raw
//! microsecond values and becomes a live `Histogram<u32>` only once it holds more than
//! [`RAW_CAPACITY`] values: a check running every 30 s never pays 13 KB per series.
//!
//! All bucket arithmetic matches hdrhistogram's for (low 1, high 3.6e9, 2 digits) exactly, and
//! quantiles are computed like `Histogram::value_at_quantile` (the highest value equivalent to
//! the bucket that reaches the rank), so `quantile` agrees with `merged(..).value_at_quantile`.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;

/// Lowest discernible value, µs.
pub const LOWEST_US: u64 = 1;
/// Highest trackable value, µs (1 hour). Larger values are clamped to it.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant digits kept.
pub const SIGFIG: u8 = 2;
/// Raw values buffered in the live minute before it switches to a live `Histogram<u32>`.
pub const RAW_CAPACITY: usize = 256;

// hdrhistogram's layout for (1, 3.6e9, 2): 256 sub-buckets per bucket, half of them new per
// bucket; unit magnitude 0.
const SUB_BUCKET_HALF_MAG: u32 = 7;
const SUB_BUCKET_HALF: u64 = 1 << SUB_BUCKET_HALF_MAG;
const SUB_BUCKET_MASK: u64 = (SUB_BUCKET_HALF << 1) - 1;
const LEADING_ZERO_BASE: u32 = 64 - SUB_BUCKET_HALF_MAG - 1;

const MINUTES_PER_HOUR: i64 = 60;
const MINUTES_PER_DAY: i64 = 1440;
/// Minute slices cover the 1 h window; older minutes live in hourly roll-ups.
const MINUTE_RETENTION: i64 = 60;
/// Hourly roll-ups cover the 24 h window; older hours live in daily roll-ups.
const HOUR_RETENTION: i64 = 24 * MINUTES_PER_HOUR;
/// Daily roll-ups cover the 30 d window; older days are dropped.
const DAY_RETENTION: i64 = 30 * MINUTES_PER_DAY;

const fn bucket_for(value: u64) -> u32 {
    LEADING_ZERO_BASE - (value | SUB_BUCKET_MASK).leading_zeros()
}

/// hdrhistogram's counts-array index of a value (≤ [`HIGHEST_US`]).
pub(crate) const fn index_for(value: u64) -> usize {
    let bucket = bucket_for(value);
    let sub = value >> bucket;
    (((bucket as u64 + 1) << SUB_BUCKET_HALF_MAG) + sub - SUB_BUCKET_HALF) as usize
}

/// (bucket, sub-bucket) of an index.
const fn location(index: usize) -> (u32, u64) {
    let bucket = (index >> SUB_BUCKET_HALF_MAG) as i64 - 1;
    let sub = (index as u64 & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF;
    if bucket < 0 {
        (0, sub - SUB_BUCKET_HALF)
    } else {
        (bucket as u32, sub)
    }
}

/// Lowest value counted at `index`, µs.
pub(crate) const fn lowest_for_index(index: usize) -> u64 {
    let (bucket, sub) = location(index);
    sub << bucket
}

/// Highest value counted at `index`, µs (what hdrhistogram reports for a quantile).
pub(crate) const fn highest_for_index(index: usize) -> u64 {
    let (bucket, sub) = location(index);
    (sub << bucket) + (1u64 << bucket) - 1
}

/// Number of buckets (indices) covering 0..=[`HIGHEST_US`].
pub(crate) const INDEX_LEN: usize = index_for(HIGHEST_US) + 1;

/// A rolling window ending now. It covers every minute that overlaps `[now - N, now]`, so it
/// always holds at least N minutes of data (up to one more minute at its old edge; the 24 h and
/// 30 d windows round their old edge out to the hour or day of their roll-ups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    M1,
    M5,
    H1,
    H24,
    D30,
    /// Any length in minutes (alert rules and burn rates: 30 m, 6 h, 3 d, ...), at most 30 d.
    Last(u32),
}

impl Window {
    pub const ALL: [Window; 5] = [Window::M1, Window::M5, Window::H1, Window::H24, Window::D30];

    /// Length in minutes.
    pub fn minutes(self) -> i64 {
        match self {
            Window::M1 => 1,
            Window::M5 => 5,
            Window::H1 => 60,
            Window::H24 => 24 * 60,
            Window::D30 => 30 * 24 * 60,
            Window::Last(m) => i64::from(m).clamp(1, 30 * 24 * 60),
        }
    }

    /// The window covering `d` (rounded up to whole minutes).
    pub fn from_duration(d: std::time::Duration) -> Window {
        let m = d.as_secs().div_ceil(60).clamp(1, 30 * 24 * 60);
        Window::Last(m as u32)
    }

    /// `1m`, `5m`, `1h`, `24h`, `30d`: how config files and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::M1 => "1m",
            Window::M5 => "5m",
            Window::H1 => "1h",
            Window::H24 => "24h",
            Window::D30 => "30d",
            Window::Last(_) => "custom",
        }
    }

    /// Which tiers the window reads: minute windows never read roll-ups.
    fn tiers(self) -> usize {
        match self {
            Window::M1 | Window::M5 | Window::H1 => 1,
            Window::H24 => 2,
            Window::D30 => 3,
            Window::Last(_) => match self.minutes() {
                m if m <= MINUTES_PER_HOUR => 1,
                m if m <= MINUTES_PER_DAY => 2,
                _ => 3,
            },
        }
    }
}

/// Whether the day starting at minute `day_start` is closed at minute `now_minute`: its last
/// hour has left the hour tier, so only a late value can still land in it.
fn day_closed(day_start: i64, now_minute: i64) -> bool {
    day_start + MINUTES_PER_DAY - 1 < now_minute.saturating_sub(HOUR_RETENTION)
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

/// Convert milliseconds to clamped microseconds; `None` for NaN.
fn to_us(value_ms: f64) -> Option<(u64, bool)> {
    if value_ms.is_nan() {
        return None;
    }
    let us = (value_ms * 1000.0).round();
    if us <= 0.0 {
        Some((0, false))
    } else if us > HIGHEST_US as f64 {
        Some((HIGHEST_US, true))
    } else {
        Some((us as u64, false))
    }
}

fn new_histogram<T: hdrhistogram::Counter>() -> Histogram<T> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("static histogram bounds")
}

// ---- compact encoding -----------------------------------------------------------------------

/// A frozen slice: the non-empty buckets of a minute, hour or day.
///
/// `data` starts with a format byte, then:
/// - [`SPARSE`]: per non-empty bucket, in index order, a LEB128 varint `delta << 1 | (count ==
///   1)` where `delta` is the index distance from the previous bucket, followed by a varint count
///   when the count is not 1. Best for a few spread-out values: a minute of 60 takes ~80 bytes.
/// - [`RUNS`]: per run of adjacent non-empty buckets, the varint gap since the previous run's
///   end and the run's length, then each count as a zigzag varint of its difference from the
///   previous count in the run. Best for busy slices (an hour or a day at 1 value/s fills
///   hundreds of adjacent buckets with similar counts): half the size of `SPARSE` for a day.
/// - [`RICE`]: the runs of `RUNS`, bit-packed with Rice codes ([`encode_rice`]): about half
///   the size of `RUNS` for busy slices and smaller than `SPARSE` for a minute of 60 values,
///   decoded without a buffer. The usual form of every tier.
/// - [`PACKED`]: a raw DEFLATE stream of a `SPARSE`, `RUNS` or `RICE` slice (tag included). A
///   day slice is packed once it is closed (every hour of it rolled in) if DEFLATE makes it
///   smaller (rarely, since `RICE`); reads inflate it. Open slices and hours are not packed:
///   they are rewritten as data rolls in.
///
/// Every encoding holds the exact bucket counts: a window answers the same whichever it reads.
///
/// 12 bytes: an hour of minute slices for 3,000 series is 180,000 entries, and at 24 bytes
/// (`i64` start, `u64` count) they were 4.4 MiB of the hour's histograms.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// First minute covered (minutes since the epoch; [`MINUTE_RANGE`] keeps it in an `i32`).
    start: i32,
    /// Where the slice's encoding ends in its [`Tier::bytes`].
    end: u32,
    /// Values in the slice; [`COUNT_IN_DATA`] when there are that many or more, and the count
    /// is the sum of the encoding's buckets (a day of a series busier than 49,000 values a
    /// second, or of huge `record_correct` fills).
    count: u32,
}

/// [`Entry::count`] of a slice whose count does not fit: read it from the encoding.
const COUNT_IN_DATA: u32 = u32::MAX;

/// Minutes since the epoch a value may be recorded at (years -2113 to 6053): slice starts are
/// `i32`, and an hour or a day rounds a minute down by less than a day. Values outside count as
/// [`WindowedHistogram::invalid`].
const MINUTE_RANGE: std::ops::RangeInclusive<i64> =
    (i32::MIN as i64 + MINUTES_PER_DAY)..=(i32::MAX as i64);

impl Entry {
    fn start(&self) -> i64 {
        i64::from(self.start)
    }
}

fn entry_count(count: u64) -> u32 {
    // `u32::MAX` itself is `COUNT_IN_DATA`: such a slice reads its count from its buckets too.
    u32::try_from(count).unwrap_or(COUNT_IN_DATA)
}

/// A frozen slice as readers see it: its first minute, its value count and its encoding.
#[derive(Debug, Clone, Copy)]
struct Slice<'a> {
    start: i64,
    count: u64,
    data: &'a [u8],
}

/// One tier's frozen slices, oldest first, sorted by start and never overlapping: their
/// encodings back to back in one buffer, and per slice an [`Entry`].
///
/// Why one buffer and not a boxed encoding per slice: an hour of minute slices for the 3,000
/// latency series of 1,000 HTTP checks is 180,000 encodings of ~54 bytes. As separate heap
/// blocks each paid the allocator's header and rounding, in deques of 32-byte entries (2 KiB a
/// series); in one buffer per tier they are the bytes alone, and the entries 24 bytes
/// (BENCHMARKS.md, "Peak RSS, session 13"). Removing the oldest slice moves the rest of the
/// buffer down (an hour of minutes is ~3 KB): once a minute per series.
#[derive(Debug, Clone, Default)]
struct Tier {
    index: VecDeque<Entry>,
    /// Slice `i`'s encoding is `bytes[index[i - 1].end..index[i].end]` (from 0 for the first).
    bytes: Vec<u8>,
    /// Minutes a full tier spans, when `bytes` is sized up front from the slices so far (see
    /// [`Tier::reserve`]); 0 when it grows by an eighth.
    span: u16,
}

impl Tier {
    /// A tier whose buffer is sized up front for `span` minutes of slices.
    fn sized_for(span: u16) -> Tier {
        Tier {
            span,
            ..Tier::default()
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn front_start(&self) -> Option<i64> {
        self.index.front().map(Entry::start)
    }

    /// Where slice `i`'s encoding begins.
    fn begin(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.index[i - 1].end as usize
        }
    }

    fn get(&self, i: usize) -> Slice<'_> {
        let e = self.index[i];
        slice(&e, &self.bytes[self.begin(i)..e.end as usize])
    }

    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = Slice<'_>> {
        self.range(0..self.len())
    }

    fn range(&self, r: std::ops::Range<usize>) -> impl Iterator<Item = Slice<'_>> {
        let mut at = self.begin(r.start);
        self.index.range(r).map(move |e| {
            let from = at;
            at = e.end as usize;
            slice(e, &self.bytes[from..at])
        })
    }

    /// The number of leading slices whose start `pred` holds for (slices are sorted by start).
    fn partition_point(&self, mut pred: impl FnMut(i64) -> bool) -> usize {
        self.index.partition_point(|e| pred(e.start()))
    }

    fn search(&self, start: i64) -> Result<usize, usize> {
        self.index.binary_search_by_key(&start, Entry::start)
    }

    /// Room for `n` more bytes of a slice starting at `start`, growing by an eighth rather than
    /// doubling: a tier's size is steady once it is full, and doubling would leave up to half of
    /// it unused.
    ///
    /// A tier with a [`span`](Self::span) (the minute tier) grows at once to what a full span
    /// of slices like those so far would take. Why: a series recording every second fills its
    /// minute tier in its first hour, and growing its buffer by an eighth took ~20
    /// reallocations, for every series at the same time; each left a block too small for the
    /// next size. With 12-byte entries, an hour of 1,000 HTTP checks' histograms grew the
    /// process by 18.7 MiB instead of 22.5 (BENCHMARKS.md, "Peak RSS, session 15"). The estimate
    /// scales the slices so far by how much of the span they cover, so a check every 5 minutes
    /// sizes for about 12 slices, not 61.
    fn reserve(&mut self, n: usize, start: i64) {
        let (len, room) = (self.bytes.len(), self.bytes.capacity() - self.bytes.len());
        if room >= n {
            return;
        }
        let mut want = n + len / 8;
        if let (Some(first), Some(last)) = (self.index.front(), self.index.back())
            && self.span > 0
        {
            let (oldest, newest) = (first.start().min(start), last.start().max(start));
            let covered = (newest - oldest + 1).max(1) as usize;
            let slices = self.index.len() + 1;
            let full = slices * usize::from(self.span) / covered.min(usize::from(self.span));
            let estimate = (len + n) / slices * full.min(usize::from(self.span));
            want = want.max(estimate.saturating_sub(len));
        }
        self.bytes.reserve_exact(want);
    }

    /// Remove the oldest slice. Read it first (`get(0)`) where it moves to another tier: a day
    /// that expires is dropped without decoding.
    fn pop_front(&mut self) {
        let Some(e) = self.index.pop_front() else {
            return;
        };
        let n = e.end as usize;
        self.bytes.drain(..n);
        for x in &mut self.index {
            x.end -= e.end;
        }
        // A tier that emptied (a series gone quiet) gives its memory back.
        if self.bytes.capacity() > 256 && self.bytes.len() < self.bytes.capacity() / 2 {
            self.bytes
                .shrink_to(self.bytes.len() + self.bytes.len() / 8);
        }
    }

    /// Insert a slice at `pos` (which keeps the tier sorted); `start` is in [`MINUTE_RANGE`].
    fn insert(&mut self, pos: usize, start: i64, count: u64, data: &[u8]) {
        self.reserve(data.len(), start);
        let at = self.begin(pos);
        self.bytes.splice(at..at, data.iter().copied());
        let len = u32::try_from(data.len()).expect("a slice's encoding is far below 4 GiB");
        for x in self.index.range_mut(pos..) {
            x.end += len;
        }
        self.index.insert(
            pos,
            Entry {
                start: i32::try_from(start).expect("slice starts are in MINUTE_RANGE"),
                end: at as u32 + len,
                count: entry_count(count),
            },
        );
    }

    /// Replace slice `pos`'s encoding with `data`, which holds `count` values.
    fn replace(&mut self, pos: usize, data: &[u8], count: u64) {
        let (from, to) = (self.begin(pos), self.index[pos].end as usize);
        if data.len() > to - from {
            self.reserve(data.len() - (to - from), self.index[pos].start());
        }
        self.bytes.splice(from..to, data.iter().copied());
        for x in self.index.range_mut(pos..) {
            x.end = (x.end as usize + data.len() - (to - from)) as u32;
        }
        self.index[pos].count = entry_count(count);
    }

    /// Bytes of encoded slices.
    fn data_len(&self) -> usize {
        self.bytes.len()
    }

    fn heap_bytes(&self) -> usize {
        self.index.capacity() * std::mem::size_of::<Entry>() + self.bytes.capacity()
    }
}

/// A slice as readers see it, from its entry and its encoding.
fn slice<'a>(e: &Entry, data: &'a [u8]) -> Slice<'a> {
    let count = if e.count == COUNT_IN_DATA {
        let mut n = 0u64;
        decode(data, |_, c| n += c);
        n
    } else {
        u64::from(e.count)
    };
    Slice {
        start: e.start(),
        count,
        data,
    }
}

/// Format byte of a [`Slice`]'s data: sparse buckets.
const SPARSE: u8 = 0;
/// Format byte: runs of adjacent buckets, counts delta-coded.
const RUNS: u8 = 1;
/// Format byte: DEFLATE of a `SPARSE`, `RUNS` or `RICE` encoding.
const PACKED: u8 = 2;
/// Format byte: runs as in `RUNS`, bit-packed with Rice codes (see [`encode_rice`]).
const RICE: u8 = 3;
/// A Rice code's unary part is cut at this many ones, followed by the value's 64 raw bits:
/// keeps a huge count (up to `u64::MAX`) from costing billions of bits.
const RICE_ESCAPE: u64 = 20;
/// Largest Rice parameter tried.
const RICE_MAX_K: u32 = 32;
/// DEFLATE level of packed day slices: each is packed once, so the smallest output is worth
/// the (tens of µs of) time.
const PACK_LEVEL: u8 = 9;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = data[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

const fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encode sorted (index, count) pairs with non-zero counts, in whichever of [`SPARSE`],
/// [`RUNS`] and [`RICE`] is smallest (for the data this daemon sees, almost always `RICE`; a
/// slice of one or two values can be smaller as `SPARSE`, which has no parameters to store).
fn encode(entries: &[(u16, u64)]) -> Box<[u8]> {
    let mut best = encode_sparse(entries);
    if best.len() >= 2 * entries.len() {
        // Adjacent buckets: runs may be smaller (a scattered slice never is).
        let runs = encode_runs(entries);
        if runs.len() < best.len() {
            best = runs;
        }
    }
    if best.len() > 5 {
        let rice = encode_rice(entries);
        if rice.len() < best.len() {
            best = rice;
        }
    }
    best.into_boxed_slice()
}

fn encode_sparse(entries: &[(u16, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.len() * 2);
    out.push(SPARSE);
    let mut prev = 0u64;
    for &(index, count) in entries {
        let delta = u64::from(index) - prev;
        prev = u64::from(index);
        if count == 1 {
            put_varint(&mut out, delta << 1 | 1);
        } else {
            put_varint(&mut out, delta << 1);
            put_varint(&mut out, count);
        }
    }
    out
}

fn encode_runs(entries: &[(u16, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.len() * 2);
    out.push(RUNS);
    let mut next = 0u64; // the first index after the previous run
    let mut k = 0;
    while k < entries.len() {
        let mut j = k;
        while j + 1 < entries.len() && entries[j + 1].0 == entries[j].0 + 1 {
            j += 1;
        }
        put_varint(&mut out, u64::from(entries[k].0) - next);
        put_varint(&mut out, (j - k + 1) as u64);
        let mut prev = 0u64;
        for &(_, count) in &entries[k..=j] {
            // Wrapping arithmetic round-trips every u64 count exactly.
            put_varint(&mut out, zigzag(count.wrapping_sub(prev) as i64));
            prev = count;
        }
        next = u64::from(entries[j].0) + 1;
        k = j + 1;
    }
    out
}

/// Writes bits least significant first.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    /// `len` (<= 32) low bits of `v`.
    fn put(&mut self, v: u64, len: u32) {
        debug_assert!(len <= 32);
        if len == 0 {
            return;
        }
        self.acc |= (v & ((1u64 << len) - 1)) << self.bits;
        self.bits += len;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    fn put_wide(&mut self, v: u64, len: u32) {
        if len > 32 {
            self.put(v, 32);
            self.put(v >> 32, len - 32);
        } else {
            self.put(v, len);
        }
    }

    /// Rice code of `v` with parameter `k`: `v >> k` in unary (ones ended by a zero), then the
    /// `k` low bits; from [`RICE_ESCAPE`] ones on, the 64 raw bits of `v` instead.
    fn rice(&mut self, v: u64, k: u32) {
        let q = v >> k;
        if q < RICE_ESCAPE {
            let ones = q as u32;
            self.put((1u64 << ones) - 1, ones);
            self.put(0, 1);
            self.put_wide(v, k);
        } else {
            self.put((1u64 << RICE_ESCAPE) - 1, RICE_ESCAPE as u32);
            self.put_wide(v, 64);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Bits of [`BitWriter::rice`]'s code of `v`.
const fn rice_bits(v: u64, k: u32) -> u64 {
    let q = v >> k;
    if q < RICE_ESCAPE {
        q + 1 + k as u64
    } else {
        RICE_ESCAPE + 64
    }
}

/// The Rice parameter that codes `values` in the fewest bits, and that many bits.
fn best_rice_k(values: impl Iterator<Item = u64> + Clone) -> (u32, u64) {
    let mut best = (0, u64::MAX);
    for k in 0..=RICE_MAX_K {
        let bits: u64 = values.clone().map(|v| rice_bits(v, k)).sum();
        if bits < best.1 {
            best = (k, bits);
        } else if bits > best.1 {
            // The cost is convex in k: past the minimum it only grows.
            break;
        }
    }
    best
}

/// Reads what [`BitWriter`] wrote.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    bits: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            bits: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        while self.bits <= 56 && self.pos < self.data.len() {
            self.acc |= u64::from(self.data[self.pos]) << self.bits;
            self.pos += 1;
            self.bits += 8;
        }
    }

    /// `len` (<= 32) bits.
    #[inline]
    fn get(&mut self, len: u32) -> u64 {
        if len == 0 {
            return 0;
        }
        self.refill();
        let v = self.acc & ((1u64 << len) - 1);
        self.acc >>= len;
        self.bits -= len;
        v
    }

    fn get_wide(&mut self, len: u32) -> u64 {
        if len > 32 {
            let lo = self.get(32);
            lo | self.get(len - 32) << 32
        } else {
            self.get(len)
        }
    }

    #[inline]
    fn rice(&mut self, k: u32) -> u64 {
        self.refill();
        let ones = u64::from(self.acc.trailing_ones());
        if ones >= RICE_ESCAPE {
            self.acc >>= RICE_ESCAPE;
            self.bits -= RICE_ESCAPE as u32;
            return self.get_wide(64);
        }
        // `ones < bits`: a writer's code always ends its unary part with a zero.
        self.acc >>= ones + 1;
        self.bits -= ones as u32 + 1;
        ones << k | self.get_wide(k)
    }
}

/// The runs of adjacent buckets of sorted entries, as (first position, last position).
fn runs_of(entries: &[(u16, u64)]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut k = 0;
    while k < entries.len() {
        let mut j = k;
        while j + 1 < entries.len() && entries[j + 1].0 == entries[j].0 + 1 {
            j += 1;
        }
        runs.push((k, j));
        k = j + 1;
    }
    runs
}

/// [`RICE`]: the runs of [`RUNS`] as three Rice-coded streams interleaved in one bit stream,
/// each with the parameter that makes it smallest: per run the gap since the previous run's end,
/// the run's length minus one, then each count as the zigzag of its difference from the
/// previous count in the run (the first from 1). Header: tag, the three parameters, the number
/// of runs (varint).
///
/// Why: a busy hour or day is hundreds of adjacent buckets whose counts differ by a few, and a
/// minute at 1 value/s is sixty single values a few buckets apart. A byte per number (`RUNS`,
/// `SPARSE`) spends 8 bits where 3-5 carry the information; Rice codes spend about that, and
/// unlike DEFLATE they decode bucket by bucket with no buffer, so hour slices can be this
/// small without slowing the 24 h windows the rules read.
fn encode_rice(entries: &[(u16, u64)]) -> Vec<u8> {
    let runs = runs_of(entries);
    let gaps = {
        let mut next = 0u64;
        runs.iter().map(move |&(a, b)| {
            let gap = u64::from(entries[a].0) - next;
            next = u64::from(entries[b].0) + 1;
            gap
        })
    };
    let lens = runs.iter().map(|&(a, b)| (b - a) as u64);
    let deltas = runs.iter().flat_map(|&(a, b)| {
        let mut prev = 1u64;
        entries[a..=b].iter().map(move |&(_, count)| {
            let d = zigzag(count.wrapping_sub(prev) as i64);
            prev = count;
            d
        })
    });
    let (kg, gap_bits) = best_rice_k(gaps.clone());
    let (kl, len_bits) = best_rice_k(lens.clone());
    let (kc, count_bits) = best_rice_k(deltas.clone());
    let bytes = (gap_bits + len_bits + count_bits).div_ceil(8) as usize;
    let mut head = Vec::with_capacity(4 + 10 + bytes);
    head.extend_from_slice(&[RICE, kg as u8, kl as u8, kc as u8]);
    put_varint(&mut head, runs.len() as u64);
    let mut w = BitWriter {
        out: head,
        acc: 0,
        bits: 0,
    };
    for (&(a, b), gap) in runs.iter().zip(gaps) {
        w.rice(gap, kg);
        w.rice((b - a) as u64, kl);
        let mut prev = 1u64;
        for &(_, count) in &entries[a..=b] {
            w.rice(zigzag(count.wrapping_sub(prev) as i64), kc);
            prev = count;
        }
    }
    w.finish()
}

/// The packed form of an encoded slice; `None` when it is packed already or DEFLATE would not
/// make it smaller.
fn pack(data: &[u8]) -> Option<Box<[u8]>> {
    if data.first() == Some(&PACKED) {
        return None;
    }
    let deflated = miniz_oxide::deflate::compress_to_vec(data, PACK_LEVEL);
    if deflated.len() + 1 >= data.len() {
        return None;
    }
    let mut out = Vec::with_capacity(deflated.len() + 1);
    out.push(PACKED);
    out.extend_from_slice(&deflated);
    Some(out.into_boxed_slice())
}

/// Call `f(index, count)` for every bucket of an encoded slice, in index order.
fn decode(data: &[u8], mut f: impl FnMut(usize, u64)) {
    let Some((&format, body)) = data.split_first() else {
        return;
    };
    let mut pos = 0;
    let mut index = 0u64;
    match format {
        SPARSE => {
            while pos < body.len() {
                let tag = get_varint(body, &mut pos);
                index += tag >> 1;
                let count = if tag & 1 == 1 {
                    1
                } else {
                    get_varint(body, &mut pos)
                };
                f(index as usize, count);
            }
        }
        RUNS => {
            while pos < body.len() {
                index += get_varint(body, &mut pos);
                let len = get_varint(body, &mut pos);
                let mut count = 0u64;
                for _ in 0..len {
                    count = count.wrapping_add(unzigzag(get_varint(body, &mut pos)) as u64);
                    f(index as usize, count);
                    index += 1;
                }
            }
        }
        RICE => {
            let (kg, kl, kc) = (u32::from(body[0]), u32::from(body[1]), u32::from(body[2]));
            pos = 3;
            let runs = get_varint(body, &mut pos);
            let mut r = BitReader::new(&body[pos..]);
            for _ in 0..runs {
                index += r.rice(kg);
                let len = r.rice(kl) + 1;
                let mut count = 1u64;
                for _ in 0..len {
                    count = count.wrapping_add(unzigzag(r.rice(kc)) as u64);
                    f(index as usize, count);
                    index += 1;
                }
            }
        }
        PACKED => {
            // Packed here from a SPARSE or RUNS encoding: it inflates, or memory is corrupt.
            let inner = miniz_oxide::inflate::decompress_to_vec(body)
                .expect("a packed slice inflates (it was deflated by `pack`)");
            debug_assert_ne!(inner.first(), Some(&PACKED));
            decode(&inner, f);
        }
        other => unreachable!("slice format {other} is never written"),
    }
}

fn decode_vec(data: &[u8]) -> Vec<(u16, u64)> {
    let mut out = Vec::new();
    decode(data, |i, c| out.push((i as u16, c)));
    out
}

/// Merge two sorted entry lists.
fn merge_entries(a: &[(u16, u64)], b: &[(u16, u64)]) -> Vec<(u16, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

// ---- accumulation and quantiles -------------------------------------------------------------

/// Dense bucket counts over a window; reused across series by the exporters so a `/metrics`
/// render allocates it once.
///
/// It also lists the buckets it touched, while they are few: a 5-minute window of a check
/// running every 30 s holds ten values spread over hundreds of buckets, and a `/metrics` render
/// reads 7,000 such windows. Sorting ten indices and visiting those beats scanning (and
/// clearing) the whole `lo..=hi` range; a busy window (more than [`SPARSE_TOUCHED`] buckets)
/// falls back to the range scan.
#[derive(Debug, Clone)]
pub struct Accumulator {
    counts: Vec<u64>,
    lo: usize,
    hi: usize,
    total: u64,
    /// Indices of the non-zero buckets, unsorted, while there are at most [`SPARSE_TOUCHED`].
    touched: Vec<u16>,
    /// More buckets than [`SPARSE_TOUCHED`] were touched: `touched` is incomplete.
    dense: bool,
}

/// Touched buckets listed before an [`Accumulator`] switches to scanning its range.
const SPARSE_TOUCHED: usize = 64;

impl Default for Accumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Accumulator {
    pub fn new() -> Self {
        Accumulator {
            counts: vec![0; INDEX_LEN],
            lo: INDEX_LEN,
            hi: 0,
            total: 0,
            touched: Vec::with_capacity(SPARSE_TOUCHED),
            dense: false,
        }
    }

    pub fn clear(&mut self) {
        if self.dense {
            if self.lo <= self.hi {
                self.counts[self.lo..=self.hi].fill(0);
            }
        } else {
            for &i in &self.touched {
                self.counts[usize::from(i)] = 0;
            }
        }
        self.touched.clear();
        self.dense = false;
        self.lo = INDEX_LEN;
        self.hi = 0;
        self.total = 0;
    }

    #[inline]
    fn add(&mut self, index: usize, count: u64) {
        if count == 0 {
            return;
        }
        let slot = &mut self.counts[index];
        if *slot == 0 && !self.dense {
            if self.touched.len() < SPARSE_TOUCHED {
                self.touched.push(index as u16);
            } else {
                self.dense = true;
            }
        }
        *slot += count;
        self.lo = self.lo.min(index);
        self.hi = self.hi.max(index);
        self.total += count;
    }

    /// Values accumulated.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The rank (1-based) of quantile `q`, as hdrhistogram's `value_at_quantile` computes it.
    fn rank(&self, q: f64) -> u64 {
        ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1)
    }

    /// The value at quantile `q` in µs, exactly as hdrhistogram's `value_at_quantile` computes
    /// it; `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let mut out = [None];
        self.scan_quantiles(&[q], &mut out);
        out[0]
    }

    /// Several quantiles (ascending or not), in ms.
    pub fn quantiles_ms(&self, qs: &[f64]) -> Vec<Option<f64>> {
        let mut us = vec![None; qs.len()];
        self.quantiles_us(qs, &mut us);
        us.into_iter()
            .map(|v| v.map(|us| us as f64 / 1000.0))
            .collect()
    }

    /// [`quantile_us`](Self::quantile_us) for each of `qs`, into `out` (one per q), in one scan
    /// of the buckets instead of one per quantile: a `/metrics` render asks three quantiles of
    /// 7,000 series, each spanning hundreds of buckets. `qs` must be ascending (the scan answers
    /// them in order); an unsorted list falls back to one scan per quantile.
    pub fn quantiles_us(&self, qs: &[f64], out: &mut [Option<u64>]) {
        debug_assert_eq!(qs.len(), out.len());
        if !qs.windows(2).all(|w| w[0] <= w[1]) {
            for (o, &q) in out.iter_mut().zip(qs) {
                *o = self.quantile_us(q);
            }
            return;
        }
        self.scan_quantiles(qs, out);
    }

    /// The scan behind the quantile methods, for ascending `qs`: the touched buckets sorted (a
    /// copy on the stack, so reads stay `&self`), or the `lo..=hi` range when dense.
    fn scan_quantiles(&self, qs: &[f64], out: &mut [Option<u64>]) {
        if self.total == 0 {
            out.fill(None);
            return;
        }
        // Ranks once per quantile, not once per bucket visited.
        let mut ranks = [0u64; 8];
        let many;
        let ranks: &[u64] = if qs.len() <= ranks.len() {
            for (r, &q) in ranks.iter_mut().zip(qs) {
                *r = self.rank(q);
            }
            &ranks[..qs.len()]
        } else {
            many = qs.iter().map(|&q| self.rank(q)).collect::<Vec<_>>();
            &many
        };
        let mut next = 0;
        let mut seen = 0u64;
        let mut visit = |index: usize, count: u64| {
            seen += count;
            while next < qs.len() && seen >= ranks[next] {
                out[next] = Some(if qs[next].clamp(0.0, 1.0) == 0.0 {
                    lowest_for_index(index)
                } else {
                    highest_for_index(index)
                });
                next += 1;
            }
            next < qs.len()
        };
        if self.dense {
            for index in self.lo..=self.hi {
                let c = self.counts[index];
                if c > 0 && !visit(index, c) {
                    break;
                }
            }
        } else {
            let mut sorted = [0u16; SPARSE_TOUCHED];
            let sorted = &mut sorted[..self.touched.len()];
            sorted.copy_from_slice(&self.touched);
            sorted.sort_unstable();
            for &i in sorted.iter() {
                let index = usize::from(i);
                if !visit(index, self.counts[index]) {
                    break;
                }
            }
        }
        for o in &mut out[next..] {
            *o = Some(highest_for_index(self.hi));
        }
    }

    /// The accumulated counts as a plain hdrhistogram (u64 counts: 30 days may exceed u32).
    pub fn to_histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram::<u64>();
        if self.lo <= self.hi {
            for index in self.lo..=self.hi {
                let c = self.counts[index];
                if c > 0 {
                    h.saturating_record_n(lowest_for_index(index), c);
                }
            }
        }
        h
    }
}

// ---- the windowed histogram -----------------------------------------------------------------

/// One latency series: a live minute, per-minute slices for 1 h, hourly roll-ups for 24 h and
/// daily roll-ups for 30 d. Not synchronised: the registry wraps each in a mutex.
#[derive(Debug, Clone)]
pub struct WindowedHistogram {
    /// Minute of the live data; `i64::MIN` before the first value.
    live_minute: i64,
    live_count: u64,
    /// The live minute's values in µs while it holds at most [`RAW_CAPACITY`] of them.
    raw: Vec<u32>,
    /// The live minute once it outgrew `raw`. Kept across minutes while the series stays busy,
    /// dropped after a quiet minute.
    hist: Option<Box<Histogram<u32>>>,
    hist_active: bool,
    minutes: Tier,
    hours: Tier,
    days: Tier,
    total_count: u64,
    total_sum_ms: f64,
    clamped: u64,
    invalid: u64,
    /// The earliest minute a value was recorded for (`i64::MAX` before the first): since when
    /// this series has data, replayed history included.
    first_minute: i64,
}

impl Default for WindowedHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowedHistogram {
    pub fn new() -> Self {
        WindowedHistogram {
            live_minute: i64::MIN,
            live_count: 0,
            raw: Vec::new(),
            hist: None,
            hist_active: false,
            minutes: Tier::sized_for((MINUTE_RETENTION + 1) as u16),
            hours: Tier::default(),
            days: Tier::default(),
            total_count: 0,
            total_sum_ms: 0.0,
            clamped: 0,
            invalid: 0,
            first_minute: i64::MAX,
        }
    }

    /// The start of the earliest minute a value was recorded for; `None` before the first.
    /// Windows reaching further back hold less data than their length.
    pub fn first_at(&self) -> Option<DateTime<Utc>> {
        (self.first_minute != i64::MAX)
            .then(|| DateTime::from_timestamp(self.first_minute.saturating_mul(60), 0))
            .flatten()
    }

    /// Record one latency in milliseconds at `at`. NaN, and times before the year -2113 or
    /// after 6053, are ignored (counted in [`invalid`](Self::invalid)); negative values count
    /// as 0; values above 1 h are clamped.
    #[inline]
    pub fn record(&mut self, value_ms: f64, at: DateTime<Utc>) {
        let minute = minute_of(at);
        let Some((us, clamped)) = to_us(value_ms).filter(|_| MINUTE_RANGE.contains(&minute)) else {
            self.invalid += 1;
            return;
        };
        self.clamped += u64::from(clamped);
        self.first_minute = self.first_minute.min(minute);
        if minute != self.live_minute {
            if minute > self.live_minute {
                self.rotate(minute);
            } else {
                self.record_past(minute, us);
                self.total_count += 1;
                self.total_sum_ms += us as f64 / 1000.0;
                return;
            }
        }
        self.record_live(us);
        self.total_count += 1;
        self.total_sum_ms += us as f64 / 1000.0;
    }

    /// Record a latency measured by a run that was supposed to start every
    /// `expected_interval_ms`, correcting for coordinated omission like hdrhistogram's
    /// `record_correct`: when the value exceeds the interval, the runs that could not start
    /// meanwhile are recorded too, as `value - interval`, `value - 2·interval`, ... down to the
    /// interval. Without this a 10 s stall with a 1 s schedule is one slow sample instead of ten.
    /// An interval ≤ 0 records the value only.
    pub fn record_correct(&mut self, value_ms: f64, expected_interval_ms: f64, at: DateTime<Utc>) {
        self.record(value_ms, at);
        let (Some((value, _)), Some((interval, _))) =
            (to_us(value_ms), to_us(expected_interval_ms))
        else {
            return;
        };
        if interval == 0 || value <= interval {
            return;
        }
        let mut missing = value - interval;
        while missing >= interval {
            self.record(missing as f64 / 1000.0, at);
            missing -= interval;
        }
    }

    #[inline]
    fn record_live(&mut self, us: u64) {
        self.live_count += 1;
        if self.hist_active {
            if let Some(h) = self.hist.as_mut() {
                h.saturating_record(us);
            }
        } else if self.raw.len() < RAW_CAPACITY {
            self.raw.push(us as u32);
        } else {
            self.promote();
            if let Some(h) = self.hist.as_mut() {
                h.saturating_record(us);
            }
        }
    }

    /// Move the raw buffer into a live histogram.
    fn promote(&mut self) {
        let h = self.hist.get_or_insert_with(|| Box::new(new_histogram()));
        for &v in &self.raw {
            h.saturating_record(u64::from(v));
        }
        self.raw.clear();
        self.hist_active = true;
    }

    /// A value for a minute that is already frozen (runs finishing out of order): merged into
    /// the slice it belongs to.
    fn record_past(&mut self, minute: i64, us: u64) {
        let entries = [(index_for(us) as u16, 1u64)];
        let now_minute = self.live_minute;
        self.add_frozen(minute, &entries, 1, now_minute);
    }

    /// Freeze the live minute and age slices as if the current minute were `minute`. Recording
    /// does this on its own; call it periodically so a quiet series releases its live buffer.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        let minute = minute_of(now);
        if minute > self.live_minute {
            self.rotate(minute);
        }
    }

    fn rotate(&mut self, minute: i64) {
        if self.live_count > 0 {
            let entries = self.live_entries();
            let count = self.live_count;
            let live_minute = self.live_minute;
            self.add_frozen(live_minute, &entries, count, minute);
        }
        // A live histogram that was not needed this minute is released.
        if !self.hist_active {
            self.hist = None;
        } else if let Some(h) = self.hist.as_mut() {
            h.reset();
        }
        self.hist_active = false;
        self.raw.clear();
        if self.raw.capacity() > RAW_CAPACITY {
            self.raw.shrink_to(RAW_CAPACITY);
        }
        self.live_count = 0;
        let previous = self.live_minute;
        self.live_minute = minute;

        while self
            .minutes
            .front_start()
            .is_some_and(|start| start < minute - MINUTE_RETENTION)
        {
            self.roll_oldest(|w| &mut w.minutes, minute);
        }
        while self
            .hours
            .front_start()
            .is_some_and(|start| start + MINUTES_PER_HOUR - 1 < minute - HOUR_RETENTION)
        {
            self.roll_oldest(|w| &mut w.hours, minute);
        }
        while self
            .days
            .front_start()
            .is_some_and(|start| start + MINUTES_PER_DAY - 1 < minute - DAY_RETENTION)
        {
            self.days.pop_front();
        }
        // Days that closed since the previous live minute without a last hour rolling into
        // them (a quiet end of day) are packed here; the others were packed as it rolled in.
        for pos in 0..self.days.len() {
            let s = self.days.get(pos);
            if !day_closed(s.start, minute) {
                break;
            }
            if !day_closed(s.start, previous)
                && let Some(packed) = pack(s.data)
            {
                let count = s.count;
                self.days.replace(pos, &packed, count);
            }
        }
    }

    /// Move the oldest slice of a tier (minutes or hours) to the tier its age now calls for.
    fn roll_oldest(&mut self, tier: fn(&mut Self) -> &mut Tier, minute: i64) {
        let from = tier(self);
        let s = from.get(0);
        let (start, count, entries) = (s.start, s.count, decode_vec(s.data));
        from.pop_front();
        self.add_frozen(start, &entries, count, minute);
    }

    /// Put frozen data that starts at `start` into the tier its age calls for (relative to the
    /// current minute `now_minute`), merging with a slice already there.
    fn add_frozen(&mut self, start: i64, entries: &[(u16, u64)], count: u64, now_minute: i64) {
        let (tier, key, is_day) = if start >= now_minute - MINUTE_RETENTION {
            (&mut self.minutes, start, false)
        } else {
            let hour = start.div_euclid(MINUTES_PER_HOUR) * MINUTES_PER_HOUR;
            if hour + MINUTES_PER_HOUR > now_minute - HOUR_RETENTION {
                (&mut self.hours, hour, false)
            } else {
                let day = start.div_euclid(MINUTES_PER_DAY) * MINUTES_PER_DAY;
                if day + MINUTES_PER_DAY > now_minute - DAY_RETENTION {
                    (&mut self.days, day, true)
                } else {
                    return; // older than 30 days
                }
            }
        };
        let pos = match tier.search(key) {
            Ok(pos) => {
                let old = tier.get(pos);
                let merged = merge_entries(&decode_vec(old.data), entries);
                let total = old.count.saturating_add(count);
                tier.replace(pos, &encode(&merged), total);
                pos
            }
            Err(pos) => {
                tier.insert(pos, key, count, &encode(entries));
                pos
            }
        };
        // The last hour of a day rolling in (or a late value) closes it: pack it now.
        if is_day && day_closed(key, now_minute) {
            let s = tier.get(pos);
            if let Some(packed) = pack(s.data) {
                let count = s.count;
                tier.replace(pos, &packed, count);
            }
        }
    }

    /// The live minute's buckets, sorted.
    fn live_entries(&self) -> Vec<(u16, u64)> {
        let mut out = Vec::new();
        if self.hist_active {
            if let Some(h) = self.hist.as_ref() {
                for index in index_for(h.min())..=index_for(h.max()) {
                    let c = u64::from(h.count_at(lowest_for_index(index)));
                    if c > 0 {
                        out.push((index as u16, c));
                    }
                }
            }
        } else {
            let mut idx: Vec<u16> = self
                .raw
                .iter()
                .map(|&v| index_for(u64::from(v)) as u16)
                .collect();
            idx.sort_unstable();
            for i in idx {
                match out.last_mut() {
                    Some((last, c)) if *last == i => *c += 1,
                    _ => out.push((i, 1)),
                }
            }
        }
        out
    }

    /// Call `f(index, count)` for every non-empty bucket of the live minute.
    fn live_each(&self, mut f: impl FnMut(usize, u64)) {
        if self.hist_active {
            if let Some(h) = self.hist.as_ref() {
                for index in index_for(h.min())..=index_for(h.max()) {
                    let c = u64::from(h.count_at(lowest_for_index(index)));
                    if c > 0 {
                        f(index, c);
                    }
                }
            }
        } else {
            for &v in &self.raw {
                f(index_for(u64::from(v)), 1);
            }
        }
    }

    fn live_into(&self, acc: &mut Accumulator) {
        self.live_each(|i, c| acc.add(i, c));
    }

    /// Visit the slices a window reads: (tier slices overlapping `[start, now]`) and whether the
    /// live minute is inside.
    ///
    /// Slices of a tier are sorted by start and never overlap, so the ones a window reads are one
    /// contiguous run, found by binary search: the SLOs' time slices ask for tens of thousands
    /// of 1-minute windows per evaluation, mostly far in the past.
    fn for_each_slice(
        &self,
        window: Window,
        now: DateTime<Utc>,
        mut f: impl FnMut(Slice<'_>),
    ) -> bool {
        let now_minute = minute_of(now);
        let start = minute_of(now - chrono::Duration::minutes(window.minutes()));
        let tiers: [(&Tier, i64); 3] = [
            (&self.minutes, 1),
            (&self.hours, MINUTES_PER_HOUR),
            (&self.days, MINUTES_PER_DAY),
        ];
        for (tier, len) in tiers.into_iter().take(window.tiers()) {
            let first = tier.partition_point(|s| s.saturating_add(len - 1) < start);
            let end = tier.partition_point(|s| s <= now_minute);
            for s in tier.range(first..end.max(first)) {
                f(s);
            }
        }
        self.live_count > 0 && self.live_minute >= start && self.live_minute <= now_minute
    }

    /// Add the window's data to `acc` (which is not cleared first).
    pub fn accumulate(&self, window: Window, now: DateTime<Utc>, acc: &mut Accumulator) {
        let live = self.for_each_slice(window, now, |s| decode(s.data, |i, c| acc.add(i, c)));
        if live {
            self.live_into(acc);
        }
    }

    /// The value at quantile `q` (0..=1) over the window, in ms (the highest value of its
    /// bucket, like hdrhistogram); `None` when the window holds no data.
    pub fn quantile(&self, window: Window, q: f64, now: DateTime<Utc>) -> Option<f64> {
        let mut acc = Accumulator::new();
        self.accumulate(window, now, &mut acc);
        acc.quantile_us(q).map(|us| us as f64 / 1000.0)
    }

    /// Values recorded in the window.
    pub fn count(&self, window: Window, now: DateTime<Utc>) -> u64 {
        let mut n = 0;
        let live = self.for_each_slice(window, now, |s| n += s.count);
        if live {
            n += self.live_count;
        }
        n
    }

    /// [`count`](Self::count) for windows ending at each of `ends`, added to `out` (one per end).
    /// Ends before the oldest data the window's tiers hold count nothing without a lookup: the
    /// SLOs' 1-minute time slices over 30 days ask for 43,200 ends, most of them older than the
    /// hour a 1-minute window reads. `ends` run newest first (as the time slices ask for them):
    /// the walk stops at the first end older than the data instead of visiting the thousands
    /// after it, for every series at every evaluation (`synmon replay` runs thousands).
    pub fn add_counts(&self, window: Window, ends: &[DateTime<Utc>], out: &mut [u64]) {
        // The loop below stops at the first end older than the data: ends must run newest
        // first, or the later (newer) ones would be silently left uncounted.
        debug_assert!(
            ends.windows(2).all(|w| w[0] >= w[1]),
            "add_counts needs its ends newest first"
        );
        let tiers = [&self.minutes, &self.hours, &self.days];
        let oldest = tiers
            .iter()
            .take(window.tiers())
            .filter_map(|t| t.front_start())
            .chain((self.live_count > 0).then_some(self.live_minute))
            .min();
        let Some(oldest) = oldest else { return };
        // The first instant of the oldest minute: `minute_of(end) >= oldest` is `end >= from`.
        let Some(from) = DateTime::<Utc>::from_timestamp(oldest.saturating_mul(60), 0) else {
            return;
        };
        for (n, end) in out.iter_mut().zip(ends) {
            if *end < from {
                // Newest first: every later end is older still.
                break;
            }
            *n += self.count(window, *end);
        }
    }

    /// Values recorded in the window at or under `limit_us` (compared with the highest value of
    /// their bucket, as `Histogram::iter_recorded` reports it), and all values recorded in the
    /// window: what a latency SLI needs, without building a histogram.
    pub fn count_le(&self, window: Window, now: DateTime<Utc>, limit_us: u64) -> (u64, u64) {
        let (mut good, mut total) = (0u64, 0u64);
        let mut add = |index: usize, count: u64| {
            total += count;
            if highest_for_index(index) <= limit_us {
                good += count;
            }
        };
        let live = self.for_each_slice(window, now, |s| decode(s.data, &mut add));
        if live {
            self.live_each(&mut add);
        }
        (good, total)
    }

    /// The window's values as one hdrhistogram (µs, u64 counts).
    pub fn merged(&self, window: Window, now: DateTime<Utc>) -> Histogram<u64> {
        let mut acc = Accumulator::new();
        self.accumulate(window, now, &mut acc);
        acc.to_histogram()
    }

    /// Values recorded since creation (a Prometheus summary's `_count`).
    pub fn total_count(&self) -> u64 {
        self.total_count
    }

    /// Sum of values recorded since creation, ms, after clamping (a summary's `_sum`).
    pub fn total_sum_ms(&self) -> f64 {
        self.total_sum_ms
    }

    /// Values above 1 h that were recorded as 1 h.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Values ignored: NaN, or recorded at a time outside the years -2113 to 6053.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    /// Bytes of encoded slice data (minute, hour and day slices).
    pub fn encoded_bytes(&self) -> usize {
        self.minutes.data_len() + self.hours.data_len() + self.days.data_len()
    }

    /// Number of frozen slices per tier (minutes, hours, days).
    pub fn slice_counts(&self) -> (usize, usize, usize) {
        (self.minutes.len(), self.hours.len(), self.days.len())
    }

    /// Heap bytes held, approximately (allocator overhead not included).
    pub fn heap_bytes(&self) -> usize {
        let tiers = self.minutes.heap_bytes() + self.hours.heap_bytes() + self.days.heap_bytes();
        let hist = self.hist.as_ref().map_or(0, |h| {
            h.distinct_values() * 4 + std::mem::size_of::<Histogram<u32>>()
        });
        tiers + self.raw.capacity() * 4 + hist
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minute: i64, second: i64) -> DateTime<Utc> {
        // Midnight UTC, so hourly and daily roll-ups line up with the test's days.
        Utc.timestamp_opt(1_699_920_000 + minute * 60 + second, 0)
            .unwrap()
    }

    /// A tiny deterministic generator (no rand dependency in the crate); the registry's
    /// tests use it too.
    pub(crate) struct Lcg(pub(crate) u64);
    impl Lcg {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        /// A draw in `0..n`.
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn epoch_fixture_starts_on_a_day() {
        assert_eq!(t(0, 0).timestamp() % 86_400, 0);
    }

    #[test]
    fn bucket_math_matches_hdrhistogram() {
        let h = new_histogram::<u32>();
        assert!(h.distinct_values() >= INDEX_LEN);
        let mut rng = Lcg(7);
        let mut values: Vec<u64> = (0..5000).collect();
        values.extend((0..20_000).map(|_| rng.next() % (HIGHEST_US + 1)));
        values.extend((0..32).map(|s| 1u64 << s).filter(|v| *v <= HIGHEST_US));
        values.push(HIGHEST_US);
        for v in values {
            let i = index_for(v);
            assert!(i < INDEX_LEN);
            assert_eq!(lowest_for_index(i), h.lowest_equivalent(v), "lowest of {v}");
            assert_eq!(
                highest_for_index(i),
                h.highest_equivalent(v),
                "highest of {v}"
            );
        }
    }

    #[test]
    fn encoding_round_trips() {
        let sparse = vec![(0u16, 1u64), (1, 5), (300, 1), (3000, 1_000_000), (3286, 2)];
        // Adjacent buckets with rising and falling counts, the extremes of u64 included.
        let mut busy: Vec<(u16, u64)> =
            (200..700).map(|i| (i, 100 + (i as u64 * 7) % 40)).collect();
        busy.extend([
            (701, u64::MAX),
            (702, 1),
            (703, u64::MAX - 1),
            (INDEX_LEN as u16 - 1, 3),
        ]);
        for entries in [sparse, busy, vec![(5, 1)], vec![]] {
            let plain = [
                encode_sparse(&entries),
                encode_runs(&entries),
                encode_rice(&entries),
            ];
            for data in &plain {
                assert_eq!(decode_vec(data), entries, "format {}", data[0]);
            }
            // `encode` picks the smaller one.
            let best = encode(&entries);
            // (`encode` skips Rice under 6 bytes: its header alone is 5.)
            assert_eq!(best.len(), plain.iter().map(Vec::len).min().unwrap());
            assert_eq!(decode_vec(&best), entries);
            for data in &plain {
                if let Some(packed) = pack(data) {
                    assert_eq!(packed[0], PACKED);
                    assert!(packed.len() < data.len());
                    assert_eq!(decode_vec(&packed), entries);
                    assert!(pack(&packed).is_none(), "packed twice");
                }
            }
        }
        assert_eq!(encode(&[]).len(), 1, "a format byte alone");
    }

    impl WindowedHistogram {
        /// The same histogram with every frozen slice in the `SPARSE` encoding this module
        /// used before runs and packing: the reference the packed one must answer like.
        fn with_sparse_slices(&self) -> WindowedHistogram {
            let mut w = self.clone();
            for tier in [&mut w.minutes, &mut w.hours, &mut w.days] {
                for pos in 0..tier.len() {
                    let s = tier.get(pos);
                    let (sparse, count) = (encode_sparse(&decode_vec(s.data)), s.count);
                    tier.replace(pos, &sparse, count);
                }
            }
            w
        }

        /// Days in a compact form: packed, or Rice-coded (which DEFLATE rarely beats).
        fn packed_days(&self) -> usize {
            self.days
                .iter()
                .filter(|s| s.data[0] == PACKED || s.data[0] == RICE)
                .count()
        }

        /// Slices per tier (minutes, hours, days) in the `RICE` encoding.
        fn rice_slices(&self) -> [usize; 3] {
            [&self.minutes, &self.hours, &self.days]
                .map(|t| t.iter().filter(|s| s.data[0] == RICE).count())
        }
    }

    /// Packed (and run-encoded) slices answer exactly as the plain sparse encoding does: every
    /// query the registry, the exporters and the rules make (counts, counts at or under a
    /// limit, quantiles, merged histograms, counts per end), on every window, at times across
    /// 31 days of random data with quiet hours, busy minutes (a live histogram) and late values
    /// (which unpack a closed day until it is packed again).
    #[test]
    fn packed_slices_answer_exactly_as_plain_ones_over_31_days() {
        let mut rng = Lcg(19);
        let mut w = WindowedHistogram::new();
        let windows = [
            Window::M1,
            Window::M5,
            Window::H1,
            Window::H24,
            Window::D30,
            Window::Last(6 * 60),
            Window::Last(3 * 1440),
            Window::Last(10 * 1440 + 7),
        ];
        let qs = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0];
        let mut checked = 0;
        for minute in 0..31 * 1440 {
            let quiet = (minute / 60) % 24 == 3; // an hour a day without values
            let n = match minute {
                _ if quiet => 0,
                m if m % 997 == 5 => 300,
                _ => 1 + rng.next() % 4,
            };
            for _ in 0..n {
                let ms = if rng.next().is_multiple_of(20) {
                    (rng.next() % 5_000_000) as f64 / 1000.0
                } else {
                    80.0 + (rng.next() % 320_000) as f64 / 1000.0
                };
                // Now and then a run finishing out of order lands a day or a minute back.
                let back = match rng.next() % 500 {
                    0 => 1440 + 5,
                    1 => 3,
                    _ => 0,
                };
                w.record(ms, t((minute - back).max(0), (rng.next() % 60) as i64));
            }
            // Check at 7 h 13 m steps from day 2, and at the end.
            if !(minute >= 2 * 1440 && minute % 433 == 0 || minute == 31 * 1440 - 1) {
                continue;
            }
            checked += 1;
            let now = t(minute, 59);
            let plain = w.with_sparse_slices();
            for window in windows {
                assert_eq!(w.count(window, now), plain.count(window, now), "{window:?}");
                for limit_us in [1, 150_000, 400_000, 2_000_000, HIGHEST_US] {
                    assert_eq!(
                        w.count_le(window, now, limit_us),
                        plain.count_le(window, now, limit_us),
                        "{window:?} {limit_us}"
                    );
                }
                for q in qs {
                    assert_eq!(
                        w.quantile(window, q, now),
                        plain.quantile(window, q, now),
                        "{window:?} {q}"
                    );
                }
                assert_eq!(w.merged(window, now), plain.merged(window, now));
                let ends: Vec<_> = (0..50)
                    .map(|k| now - chrono::Duration::minutes(k * 97))
                    .collect();
                let (mut a, mut b) = (vec![0; ends.len()], vec![0; ends.len()]);
                w.add_counts(window, &ends, &mut a);
                plain.add_counts(window, &ends, &mut b);
                assert_eq!(a, b, "{window:?}");
            }
        }
        assert!(checked > 90, "{checked}");
        // Not vacuous: the days that closed are packed, and packing saved memory.
        let now = t(31 * 1440, 0);
        w.advance(now);
        assert!(
            w.packed_days() >= 28,
            "{} packed of {:?}",
            w.packed_days(),
            w.slice_counts()
        );
        // Rice codes are the usual form of hours (a handful of values a minute).
        let [_, h, _] = w.rice_slices();
        let (_, hours, _) = w.slice_counts();
        assert!(h + 2 >= hours, "{h} Rice-coded hours of {hours}");
        assert!(w.encoded_bytes() < w.with_sparse_slices().encoded_bytes() * 3 / 4);
        assert_eq!(
            w.count(Window::D30, now),
            w.with_sparse_slices().count(Window::D30, now)
        );
    }

    #[test]
    fn uniform_1_to_1000_ms_percentiles() {
        let mut w = WindowedHistogram::new();
        for ms in 1..=1000 {
            w.record(f64::from(ms), t(0, 10));
        }
        let now = t(0, 30);
        let within = |got: f64, want: f64| (got - want).abs() <= want * 0.01;
        let p50 = w.quantile(Window::M1, 0.5, now).unwrap();
        let p95 = w.quantile(Window::M1, 0.95, now).unwrap();
        let p99 = w.quantile(Window::M1, 0.99, now).unwrap();
        assert!(within(p50, 500.0), "p50 {p50}");
        assert!(within(p95, 950.0), "p95 {p95}");
        assert!(within(p99, 990.0), "p99 {p99}");
        assert_eq!(w.count(Window::M1, now), 1000);
        // Same answer as hdrhistogram itself on the same data.
        let mut h = new_histogram::<u64>();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            let want = h.value_at_quantile(q) as f64 / 1000.0;
            assert_eq!(w.quantile(Window::M1, q, now), Some(want), "q {q}");
        }
        // And after freezing into a slice, nothing changes.
        w.advance(t(1, 0));
        assert_eq!(w.slice_counts(), (1, 0, 0));
        assert_eq!(w.quantile(Window::M5, 0.95, t(1, 0)), Some(p95));
    }

    #[test]
    fn quantiles_match_hdrhistogram_on_random_data_across_tiers() {
        let mut rng = Lcg(42);
        let mut w = WindowedHistogram::new();
        let mut h = new_histogram::<u64>();
        // Three days of data, 40 values per minute (some minutes promote to a live histogram).
        for minute in 0..3 * 1440 {
            let n = if minute % 7 == 0 { 400 } else { 3 };
            for _ in 0..n {
                let ms = (rng.next() % 5_000_000) as f64 / 1000.0 + 0.5;
                w.record(ms, t(minute, 5));
                h.record((ms * 1000.0).round() as u64).unwrap();
            }
        }
        let now = t(3 * 1440, 0);
        assert_eq!(w.count(Window::D30, now), h.len());
        for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let want = h.value_at_quantile(q) as f64 / 1000.0;
            assert_eq!(w.quantile(Window::D30, q, now), Some(want), "q {q}");
        }
        let merged = w.merged(Window::D30, now);
        assert_eq!(merged.len(), h.len());
        assert_eq!(merged.value_at_quantile(0.99), h.value_at_quantile(0.99));
        let (m, hr, d) = w.slice_counts();
        assert!(m <= 61 && hr <= 25 && d >= 2, "{m} {hr} {d}");
    }

    /// The one-scan quantiles (what `/metrics` uses) answer exactly what one scan per quantile
    /// does, on every window, including q = 0 and 1, repeated and unsorted lists.
    /// The accumulator's sparse path (few touched buckets, visited sorted) and its dense path
    /// (the range scan) answer like hdrhistogram itself, and one accumulator reused across
    /// windows of every size (as a `/metrics` render reuses it) is cleared completely between
    /// them, whichever path it took.
    #[test]
    fn sparse_and_dense_accumulators_answer_like_hdrhistogram_when_reused() {
        let mut rng = Lcg(23);
        let mut acc = Accumulator::new();
        let qs = [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0];
        let sizes = [1, 2, 10, 63, 64, 65, 66, 500, 3, 5000, 0, 7, 64, 1];
        for (round, n) in sizes.into_iter().enumerate() {
            acc.clear();
            let mut reference = new_histogram::<u64>();
            for _ in 0..n {
                // Repeats too: a bucket counted twice is touched once.
                let us = 1 + rng.next() % (if round % 2 == 0 { 400_000 } else { 60 });
                acc.add(index_for(us), 1);
                reference.record(us).unwrap();
            }
            assert_eq!(acc.total(), n, "round {round}");
            let mut got = [None; 8];
            acc.quantiles_us(&qs, &mut got);
            for (q, got) in qs.iter().zip(got) {
                let want = (n > 0).then(|| reference.value_at_quantile(*q));
                assert_eq!(got, want, "round {round}: {n} values, q {q}");
                assert_eq!(
                    acc.quantile_us(*q),
                    want,
                    "round {round}: {n} values, q {q}"
                );
            }
            let buckets = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
                h.iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect()
            };
            assert_eq!(
                buckets(&acc.to_histogram()),
                buckets(&reference),
                "round {round}"
            );
        }
        // Cleared after the dense rounds: every bucket is zero again.
        acc.clear();
        assert!(acc.counts.iter().all(|&c| c == 0));
    }

    #[test]
    fn one_scan_quantiles_equal_one_scan_per_quantile() {
        let mut rng = Lcg(7);
        let mut w = WindowedHistogram::new();
        for minute in 0..2 * 1440 {
            for _ in 0..(rng.next() % 50) {
                let ms = (rng.next() % 3_000_000) as f64 / 1000.0;
                w.record(ms, t(minute, 30));
            }
        }
        let now = t(2 * 1440, 10);
        let lists: [&[f64]; 4] = [
            &[0.5, 0.95, 0.99],
            &[0.0, 0.0, 0.25, 0.5, 0.5, 0.9, 0.999, 1.0],
            &[0.99, 0.5, 0.0],
            &[1.0],
        ];
        for window in Window::ALL.into_iter().chain([Window::Last(7)]) {
            let mut acc = Accumulator::new();
            w.accumulate(window, now, &mut acc);
            for qs in lists {
                let mut got = vec![None; qs.len()];
                acc.quantiles_us(qs, &mut got);
                let want: Vec<_> = qs.iter().map(|&q| acc.quantile_us(q)).collect();
                assert_eq!(got, want, "{window:?} {qs:?}");
            }
        }
        let empty = Accumulator::new();
        let mut got = [Some(1); 3];
        empty.quantiles_us(&[0.5, 0.95, 0.99], &mut got);
        assert_eq!(got, [None; 3]);
    }

    #[test]
    fn minute_zero_leaves_m1_after_two_minutes_and_m5_after_minute_five() {
        let mut w = WindowedHistogram::new();
        w.record(100.0, t(0, 15));
        assert_eq!(w.count(Window::M1, t(0, 59)), 1);
        assert_eq!(w.count(Window::M1, t(1, 30)), 1, "M1 covers [now-1m, now]");
        assert_eq!(w.count(Window::M1, t(2, 0)), 0);
        assert_eq!(w.quantile(Window::M1, 0.5, t(2, 0)), None);
        // Rotation does not change the answer; recording in later minutes does not either.
        w.record(200.0, t(3, 0));
        assert_eq!(w.count(Window::M5, t(4, 59)), 2);
        assert_eq!(w.count(Window::M5, t(5, 59)), 2);
        assert_eq!(w.count(Window::M5, t(6, 0)), 1);
        assert_eq!(w.count(Window::M1, t(3, 30)), 1);
        assert_eq!(w.quantile(Window::M5, 1.0, t(6, 0)), Some(200.703));
        assert_eq!(w.count(Window::H1, t(60, 59)), 2);
        assert_eq!(w.count(Window::H1, t(61, 0)), 1);
    }

    #[test]
    fn rollups_for_24_hours_and_30_days() {
        let mut w = WindowedHistogram::new();
        // One value at 10 ms in every minute of day 0 (1440 values), then one per hour at
        // 1000 ms for the following 40 days.
        for m in 0..1440 {
            w.record(10.0, t(m, 0));
        }
        for h in 24..(41 * 24) {
            w.record(1000.0, t(h * 60, 30));
            let now = t(h * 60, 31);
            let (mins, hours, days) = w.slice_counts();
            assert!(
                mins <= 61 && hours <= 26 && days <= 32,
                "{mins} {hours} {days}"
            );
            if h == 24 {
                // Day 0 is still fully inside 24 h + its rounding: H24 covers [now-24h, now].
                assert_eq!(w.count(Window::H24, now), 1440 + 1);
                assert_eq!(w.count(Window::H1, now), 60 + 1);
            }
            if h == 48 {
                // Day 0 is older than 24 h: it left H24 but stays in D30.
                assert_eq!(w.count(Window::H24, now), 25);
                assert_eq!(w.count(Window::D30, now), 1440 + 25);
                assert_eq!(w.quantile(Window::D30, 0.5, now), Some(10.047));
                assert_eq!(w.quantile(Window::H24, 0.5, now), Some(1003.519));
            }
        }
        // After 41 days, day 0 is gone; D30 holds 30 days of hourly values (+ rounding).
        let now = t(41 * 1440, 0);
        let n = w.count(Window::D30, now);
        assert!((30 * 24..=31 * 24 + 1).contains(&n), "{n}");
        assert_eq!(w.quantile(Window::D30, 0.0, now), Some(999.424));
        assert_eq!(w.total_count(), 1440 + 40 * 24);
    }

    #[test]
    fn record_correct_fills_missed_slots() {
        let mut w = WindowedHistogram::new();
        w.record_correct(1000.0, 100.0, t(0, 0));
        let now = t(0, 1);
        assert_eq!(w.count(Window::M1, now), 10); // 1000, 900, ..., 100
        assert_eq!(w.total_sum_ms(), 5500.0);
        assert!(w.quantile(Window::M1, 0.0, now).unwrap() <= 100.0);
        // No correction when the run finished within its interval.
        w.record_correct(50.0, 100.0, t(0, 2));
        assert_eq!(w.count(Window::M1, now), 11);
        // Same as hdrhistogram's record_correct.
        let mut h = new_histogram::<u64>();
        h.record_correct(1_000_000, 100_000).unwrap();
        h.record_correct(50_000, 100_000).unwrap();
        for q in [0.0, 0.5, 0.9, 1.0] {
            assert_eq!(
                w.quantile(Window::M1, q, now),
                Some(h.value_at_quantile(q) as f64 / 1000.0)
            );
        }
    }

    #[test]
    fn times_outside_the_slices_range_are_invalid_not_wrapped() {
        let mut w = WindowedHistogram::new();
        let far = Utc.with_ymd_and_hms(6100, 1, 1, 0, 0, 0).unwrap();
        let early = Utc.with_ymd_and_hms(-2200, 1, 1, 0, 0, 0).unwrap();
        w.record(1.0, far);
        w.record(1.0, early);
        assert_eq!(w.invalid(), 2);
        assert_eq!(w.total_count(), 0);
        let edge = Utc.with_ymd_and_hms(6053, 1, 1, 0, 0, 0).unwrap();
        w.record(1.0, edge);
        w.advance(edge + chrono::Duration::minutes(1));
        assert_eq!(w.slice_counts(), (1, 0, 0));
        assert_eq!(w.count(Window::M5, edge + chrono::Duration::minutes(1)), 1);
    }

    #[test]
    fn a_slice_counting_past_u32_reads_its_count_from_its_buckets() {
        let mut w = WindowedHistogram::new();
        let (m0, big) = (minute_of(t(0, 0)), u64::from(u32::MAX) - 5);
        w.add_frozen(m0, &[(10, big)], big, m0 + 1);
        assert_eq!(w.minutes.index[0].count, u32::MAX - 5);
        w.add_frozen(m0, &[(10, 7), (12, 3)], 10, m0 + 1);
        assert_eq!(w.minutes.index[0].count, COUNT_IN_DATA);
        assert_eq!(w.count(Window::M5, t(1, 0)), big + 10);
        // Rolled into the day tier and packed there, the count stays exact.
        w.add_frozen(m0, &[(11, 1)], 1, m0 + 1);
        w.advance(t(2 * MINUTES_PER_DAY, 0));
        assert_eq!(w.slice_counts(), (0, 0, 1));
        assert_eq!(w.count(Window::D30, t(2 * MINUTES_PER_DAY, 0)), big + 11);
    }

    #[test]
    fn clamps_above_an_hour_and_ignores_nan() {
        let mut w = WindowedHistogram::new();
        w.record(5_000_000.0, t(0, 0));
        w.record(f64::NAN, t(0, 0));
        w.record(-3.0, t(0, 0));
        assert_eq!(w.clamped(), 1);
        assert_eq!(w.invalid(), 1);
        assert_eq!(w.count(Window::M1, t(0, 1)), 2);
        let max = w.quantile(Window::M1, 1.0, t(0, 1)).unwrap();
        assert!((3_600_000.0..3_640_000.0).contains(&max), "{max}");
        assert_eq!(w.quantile(Window::M1, 0.0, t(0, 1)), Some(0.0));
    }

    #[test]
    fn late_values_land_in_their_own_minute() {
        let mut w = WindowedHistogram::new();
        w.record(10.0, t(0, 0));
        w.record(20.0, t(3, 0));
        w.record(30.0, t(0, 59)); // finished out of order
        w.record(40.0, t(1, 0)); // a minute nobody recorded in yet
        assert_eq!(w.count(Window::M1, t(1, 30)), 3);
        assert_eq!(w.count(Window::M1, t(3, 30)), 1);
        assert_eq!(w.slice_counts().0, 2);
    }

    #[test]
    fn busy_minutes_use_a_live_histogram_that_is_released_when_quiet() {
        let mut w = WindowedHistogram::new();
        for i in 0..1000 {
            w.record(f64::from(i % 300), t(0, i64::from(i % 60)));
        }
        assert!(w.hist_active);
        w.record(1.0, t(1, 0));
        assert!(
            w.hist.is_some() && !w.hist_active,
            "kept for the next busy minute"
        );
        w.record(1.0, t(2, 0));
        assert!(w.hist.is_none(), "released after a quiet minute");
        assert_eq!(w.count(Window::M5, t(2, 0)), 1002);
    }
}
