// The whole-page write path, in batches of up to 32 pages (one 128 KiB FUSE write):
//
//   1. classify each page: zeros (-> hole), unchanged (same bytes as the slot's page), a twin
//      of an indexed page (inline dedup: a candidate, pinned by a reference, then byte-compared),
//      a twin of an earlier new page of this batch, or new. Candidates come from two places:
//        - sequential prediction: a copy of a file finds its twins in consecutive slots, so
//          after slot i matched page p, slot i+1 is first tried against page p+1 (the
//          mapping remembers the offset p - i between writes). A predicted candidate costs
//          no hash and no index probe, which were a third of the CPU of a duplicate page;
//          only empty slots are predicted, since an existing page needs its hash to tell
//          "unchanged" anyway. A guess is only a nominee, exactly like a hash match: it is
//          pinned (a free or nonexistent page is skipped) and byte-compared, and a wrong
//          guess falls back to the hash and the index;
//        - the content index, probed by hash for the other pages, with the whole batch's
//          cache misses overlapped (see ContentIndex).
//      Cached candidates are compared in place in the page cache; the others are read in
//      runs of consecutive slots, one pread per run, so deduplicating 128 KiB of a copied
//      file costs at most one read instead of 32;
//   2. write every run of new pages that sit next to each other in the caller's buffer with
//      one Store.AllocatePages call, which puts them in consecutive slots when it can and so
//      issues one pwrite per run instead of one per page;
//   3. swap the slots, release the old pages, report broken shares.
//
// The caller (Write) has taken the gate and the stripes and asked the break-share policy.
//
// Figures (scripts/bench/store --mib 1024, 2-core VM shared with other jobs, so +-30%; the raw
// 4 KiB pwrite loop itself measured 0.3-1.0 GB/s): unique ingest 0.8-1.3x that loop;
// duplicate ingest 3.9 GB/s, from 2.3-2.5 GB/s before the in-place cache compare, the
// overlapped probes and the prediction (a harness that rewrites 512 MiB of duplicates eight
// times: 1.5-2.2 -> 2.9-3.5 -> 4.5-6.0 GB/s). What remains is mostly the pread of candidates
// not in the page cache (half of them with a cache of half the data). Per-page pwrites and
// one pread per compared candidate made unique and duplicate ingest 0.6x and 1.1x before
// batching.
using System.Runtime.CompilerServices;
using DedupFs.Store;

namespace DedupFs.Pages;

public sealed partial class Mapping
{
    private const int Batch = 32;

    private enum PageFate : byte { Hole, Unchanged, Shared, BatchTwin, New }

    [SkipLocalsInit]
    private void WriteWholePages(long firstIdx, ReadOnlySpan<byte> src, Span<byte> scratch)
    {
        Span<ulong> hashes = stackalloc ulong[Batch];
        Span<uint> ids = stackalloc uint[Batch];
        Span<PageFate> fates = stackalloc PageFate[Batch];
        Span<PageId> fresh = stackalloc PageId[Batch];
        int pages = src.Length / PageSize;
        bool dedup = _engine.Options.InlineDedup;
        for (int b = 0; b < pages; b += Batch)
        {
            int n = Math.Min(Batch, pages - b);
            ReadOnlySpan<byte> batch = src.Slice(b * PageSize, n * PageSize);

            try
            {
                ClassifyAndAllocate(batch, firstIdx + b, n, hashes, ids, fates, fresh, dedup, scratch);
            }
            catch
            {
                // Nothing is in a slot yet: drop every reference this batch took, then fail.
                for (int k = 0; k < n; k++)
                    if (ids[k] != 0 && fates[k] is PageFate.Shared or PageFate.New) _engine.ReleasePage(new PageId(ids[k]));
                throw;
            }

            // 3. Swap the slots.
            for (int k = 0; k < n; k++)
            {
                if (fates[k] == PageFate.Unchanged) continue;
                long idx = firstIdx + b + k;
                PageId old = _slots.Get(idx);
                var now = new PageId(ids[k]);
                if (old.IsNone && now.IsNone) continue;
                if (now.IsNone) Interlocked.Increment(ref _engine.Counters.ZeroPagesSkipped);
                bool shared = _engine.IsShared(old);
                _slots.Set(idx, now);
                if (!old.IsNone) _engine.ReleasePage(old);
                if (shared) NoteBroken(idx, old, now, BreakShareReason.Write);
            }
        }
    }

    // Phases 1 and 2 for one batch: on return every page has its fate and (but for holes and
    // unchanged pages) the id it will get, with a reference held for the slot.
    [SkipLocalsInit]
    private void ClassifyAndAllocate(ReadOnlySpan<byte> batch, long firstIdx, int n, Span<ulong> hashes, Span<uint> ids,
        Span<PageFate> fates, Span<PageId> fresh, bool dedup, Span<byte> scratch)
    {
        ids[..n].Clear();
        fates[..n].Fill(PageFate.Hole);
        Span<bool> hashed = stackalloc bool[Batch];
        ContentIndex index = _engine.Index;
        DedupFs.Store.Store store = _engine.Store;
        long delta = dedup ? Volatile.Read(ref _predictDelta) : NoPrediction;
        bool predicting = delta != NoPrediction;
        var tally = new RefTally();
        try
        {
            // 1a. Holes, predicted twins, hashes and unchanged pages; start loading the index line
            // of every page that still needs a probe.
            for (int k = 0; k < n; k++)
            {
                ReadOnlySpan<byte> content = batch.Slice(k * PageSize, PageSize);
                hashed[k] = false;
                if (PageContent.IsZero(content)) continue;
                PageId old = _slots.Get(firstIdx + k);
                if (predicting && old.IsNone)
                {
                    PageId guess = Predict(firstIdx + k, delta);
                    uint now = store.TryAddRefGuess(guess);
                    if (now != 0)
                    {
                        tally.Added(now);
                        ids[k] = guess.Value;
                        fates[k] = PageFate.New;   // a pinned nominee, compared below
                        continue;
                    }
                    predicting = false;   // the run of twins ended: hash and probe the rest
                }
                ulong hash = hashes[k] = PageContent.Hash(content);
                hashed[k] = true;
                if (!old.IsNone && store.GetRecord(old).Hash == hash && _engine.ContentEquals(old, content, scratch))
                {
                    fates[k] = PageFate.Unchanged;
                    continue;
                }
                fates[k] = PageFate.New;
                if (dedup) index.PrefetchProbe(hash);
            }
            if (!dedup)
            {
                AllocateNewRuns(batch, n, hashes, ids, fates, fresh);
                return;
            }
            // 1b. The candidates' records (their hash and refcount are read next), then 1c. pin the
            // first candidate of each page not predicted. The misses of 1a and 1b overlap across the batch.
            for (int k = 0; k < n; k++)
                if (hashed[k] && fates[k] == PageFate.New) store.PrefetchRecord(new PageId(index.PeekFirst(hashes[k])));
            for (int k = 0; k < n; k++)
                if (hashed[k] && fates[k] == PageFate.New) ids[k] = _engine.PinFirstCandidate(hashes[k], ref tally).Value;
        }
        finally
        {
            tally.AddTo(_engine.Counters);   // before anything can release one of these pins
        }

        int hits = CompareCandidates(batch, n, ids, fates, scratch);
        if (hits > 0) Interlocked.Add(ref _engine.Counters.InlineDedupHits, hits);
        for (int k = 0; k < n; k++)
        {
            if (fates[k] != PageFate.New) continue;
            ReadOnlySpan<byte> content = batch.Slice(k * PageSize, PageSize);
            if (!hashed[k])
            {
                hashes[k] = PageContent.Hash(content);   // a wrong guess: now it needs the hash
                hashed[k] = true;
            }
            if (ids[k] != 0)
            {
                // The first candidate differed: release it and try the others (a collision, or a
                // wrong guess).
                var first = new PageId(ids[k]);
                ids[k] = 0;
                _engine.ReleasePage(first);
                PageId other = _engine.FindIdentical(content, hashes[k], first, scratch);
                if (!other.IsNone)
                {
                    Interlocked.Increment(ref _engine.Counters.InlineDedupHits);
                    ids[k] = other.Value;
                    fates[k] = PageFate.Shared;
                    continue;
                }
            }
            int earlier = EarlierNewTwin(batch, hashes, fates, k);
            if (earlier >= 0)
            {
                ids[k] = (uint)earlier;  // resolved to a page id after allocation
                fates[k] = PageFate.BatchTwin;
            }
        }
        RememberPrediction(firstIdx, n, ids, fates);

        AllocateNewRuns(batch, n, hashes, ids, fates, fresh);
        for (int k = 0; k < n; k++)
        {
            if (fates[k] != PageFate.BatchTwin) continue;
            var twin = new PageId(ids[(int)ids[k]]);
            _engine.AddRef(twin);
            Interlocked.Increment(ref _engine.Counters.InlineDedupHits);
            ids[k] = twin.Value;
            fates[k] = PageFate.Shared;   // now holds its own reference, like an index twin
        }
    }

    // Sequential prediction state: page id - page index of the last slot that found a twin, or
    // NoPrediction. One long, so racing writers of one file can only leave a stale guess, which
    // the compare rejects.
    private const long NoPrediction = long.MinValue;
    private long _predictDelta = NoPrediction;

    private static PageId Predict(long index, long delta)
    {
        long v = index + delta;
        return v is > 0 and <= uint.MaxValue ? new PageId((uint)v) : PageId.None;
    }

    // After a batch: predict from its last twin; a batch of only new pages stops predicting, so
    // unique data pays for at most one batch of wrong guesses.
    private void RememberPrediction(long firstIdx, int n, ReadOnlySpan<uint> ids, ReadOnlySpan<PageFate> fates)
    {
        for (int k = n - 1; k >= 0; k--)
        {
            if (fates[k] == PageFate.Shared)
            {
                Volatile.Write(ref _predictDelta, ids[k] - (firstIdx + k));
                return;
            }
            if (fates[k] is PageFate.New or PageFate.BatchTwin)
            {
                Volatile.Write(ref _predictDelta, NoPrediction);
                return;
            }
        }
    }

    // 2. Allocates runs of new pages that are adjacent in the buffer: one pwrite each.
    private void AllocateNewRuns(ReadOnlySpan<byte> batch, int n, ReadOnlySpan<ulong> hashes, Span<uint> ids,
        ReadOnlySpan<PageFate> fates, Span<PageId> fresh)
    {
        for (int k = 0; k < n;)
        {
            if (fates[k] != PageFate.New) { k++; continue; }
            int end = k + 1;
            while (end < n && fates[end] == PageFate.New) end++;
            _engine.InstallNewPages(batch[(k * PageSize)..(end * PageSize)], hashes[k..end], fresh[k..end]);
            for (int j = k; j < end; j++) ids[j] = fresh[j].Value;
            k = end;
        }
    }

    // Compares every pinned first candidate (ids[k] != 0, fate New) with its page: in place in the
    // cache when cached, else read in runs of consecutive slots. A match becomes Shared; a mismatch
    // keeps its pin for the caller to release. Returns the number of matches.
    private int CompareCandidates(ReadOnlySpan<byte> batch, int n, Span<uint> ids, Span<PageFate> fates, Span<byte> scratch)
    {
        // Cached candidates first, one by one; `pending` marks the rest for the run reads.
        Span<bool> pending = stackalloc bool[Batch];
        int hits = 0, misses = 0;
        PageCache cache = _engine.Cache;
        for (int k = 0; k < n; k++)
        {
            pending[k] = false;
            if (fates[k] != PageFate.New || ids[k] == 0) continue;
            switch (cache.TryCompare(new PageId(ids[k]), batch.Slice(k * PageSize, PageSize)))
            {
                case PageCache.CompareResult.Equal:
                    fates[k] = PageFate.Shared;
                    hits++;
                    break;
                case PageCache.CompareResult.Miss:
                    pending[k] = true;
                    misses++;
                    break;
            }
        }
        if (misses == 0) return hits;
        byte[] runBuffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Batch * PageSize);
        try
        {
            for (int k = 0; k < n;)
            {
                if (!pending[k]) { k++; continue; }
                int end = k + 1;
                while (end < n && pending[end] && ids[end] == ids[end - 1] + 1) end++;
                Span<byte> run = runBuffer.AsSpan(0, (end - k) * PageSize);
                _engine.Store.ReadPagesForCompare(new PageId(ids[k]), run);
                for (int j = k; j < end; j++)
                {
                    if (!run.Slice((j - k) * PageSize, PageSize).SequenceEqual(batch.Slice(j * PageSize, PageSize))) continue;
                    fates[j] = PageFate.Shared;
                    hits++;
                }
                k = end;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(runBuffer);
        }
        return hits;
    }

    private static int EarlierNewTwin(ReadOnlySpan<byte> batch, ReadOnlySpan<ulong> hashes, ReadOnlySpan<PageFate> fates, int k)
    {
        ReadOnlySpan<byte> content = batch.Slice(k * PageSize, PageSize);
        for (int j = 0; j < k; j++)
            if (fates[j] == PageFate.New && hashes[j] == hashes[k] && batch.Slice(j * PageSize, PageSize).SequenceEqual(content))
                return j;
        return -1;
    }
}
