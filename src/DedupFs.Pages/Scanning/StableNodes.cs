// The stable index of the scanner [KSM's stable tree with its chains]: content key -> the
// shared pages with those bytes that slots may be merged into.
//
// A node holds one page until that page has max_page_sharing mappers; an identical page that
// pairs up in the unstable index afterwards becomes a second "dup" of the same node, which is
// then a chain (stable_node_chains / stable_node_dups). Searches take the first dup with room,
// so dups fill one after the other, as the kernel's do.
//
// Which pages are in it: those the scanner merged slots into [KSM pages]. Pages shared by clones
// or inline dedup are merge targets too, but the scanner finds them through the engine's
// content index instead of recording each one it walks past, so a heavily reflinked store
// costs nothing here; one enters this index when the scanner first merges into it. A page
// with fewer than two mappers is no longer shared: in DedupFs a write never changes a page in
// place, so a page with one mapper is simply private again. Such dups, and ids freed and
// reused for other bytes (the stored hash no longer matches the node's), are dead; a search
// skips them, and Prune drops them every stable_node_chains_prune_millisecs (a chain left
// with one dup is a plain node again).
//
// The key is the page's xxHash64 (mixed with the merge domain when domains do not merge). Two
// different contents with one hash would share a node: a search compares bytes, so that only
// costs a failed compare, and the chain statistics would count them as dups.
//
// Thread safety: mutated by the thread holding the scan lock, under _lock, which statistics
// readers also take. Nothing is called while _lock is held.
using DedupFs.Store;

namespace DedupFs.Pages;

internal sealed class StableNodes(DedupFs.Store.Store store)
{
    private sealed class Node(ulong hash, uint first)
    {
        public readonly ulong Hash = hash;   // the content hash (the key may be mixed with a domain)
        public uint[] Dups = [first];
    }

    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Node> _nodes = new();

    /// <summary>Nodes (one per content key).</summary>
    public int Count { get { lock (_lock) return _nodes.Count; } }

    /// <summary>Copies into <paramref name="dest"/>, in order, the live dups of <paramref name="key"/> with fewer than
    /// <paramref name="max"/> mappers (a long chain of full dups must not hide the one with room); returns how many.</summary>
    public int DupsWithRoom(ulong key, ulong hash, uint max, Span<uint> dest)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(key, out Node? node)) return 0;
            int n = 0;
            foreach (uint p in node.Dups)
            {
                if (n == dest.Length) break;
                PageRecord rec = store.GetRecord(new PageId(p));
                if (rec.RefCount >= 2 && rec.RefCount < max && rec.Hash == hash) dest[n++] = p;
            }
            return n;
        }
    }

    /// <summary>Whether <paramref name="page"/> is one of the dups of <paramref name="key"/>.</summary>
    public bool Contains(ulong key, uint page)
    {
        lock (_lock) return _nodes.TryGetValue(key, out Node? node) && Array.IndexOf(node.Dups, page) >= 0;
    }

    /// <summary>Records <paramref name="page"/> (bytes hashing to <paramref name="hash"/>) as a stable page of
    /// <paramref name="key"/>; a no-op if it is one already.</summary>
    public void Add(ulong key, ulong hash, uint page)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(key, out Node? node)) { _nodes[key] = new Node(hash, page); return; }
            if (Array.IndexOf(node.Dups, page) >= 0) return;
            var more = new uint[node.Dups.Length + 1];
            node.Dups.CopyTo(more, 0);
            more[^1] = page;
            node.Dups = more;
        }
    }

    /// <summary>Whether <paramref name="page"/> is still shared and still holds bytes hashing to <paramref name="hash"/>.</summary>
    public bool IsLive(uint page, ulong hash)
    {
        PageRecord rec = store.GetRecord(new PageId(page));
        return rec.RefCount >= 2 && rec.Hash == hash;
    }

    /// <summary>Drops dead dups and empty nodes; returns how many dups went.</summary>
    public int Prune()
    {
        int dropped = 0;
        lock (_lock)
        {
            List<ulong>? empty = null;
            foreach ((ulong key, Node node) in _nodes)
            {
                uint[] live = Array.FindAll(node.Dups, p => IsLive(p, node.Hash));
                dropped += node.Dups.Length - live.Length;
                if (live.Length == 0) (empty ??= []).Add(key);
                else node.Dups = live;
            }
            if (empty != null) foreach (ulong k in empty) _nodes.Remove(k);
        }
        return dropped;
    }

    /// <summary>Whether any page of the index is still shared [ksm_pages_shared != 0 in the kernel's EBUSY rules].</summary>
    public bool AnyLive()
    {
        lock (_lock)
        {
            foreach (Node node in _nodes.Values)
                foreach (uint p in node.Dups)
                    if (IsLive(p, node.Hash)) return true;
        }
        return false;
    }

    /// <summary>stable_node_chains and stable_node_dups, counting live dups only.</summary>
    public (long Chains, long Dups) CountChains()
    {
        long chains = 0, dups = 0;
        lock (_lock)
        {
            foreach (Node node in _nodes.Values)
            {
                if (node.Dups.Length < 2) continue;
                int live = 0;
                foreach (uint p in node.Dups) if (IsLive(p, node.Hash)) live++;
                if (live < 2) continue;
                chains++;
                dups += live;
            }
        }
        return (chains, dups);
    }

    /// <summary>Approximate bytes: a Dictionary entry, a node object and its dup array per node.</summary>
    public long MemoryBytes { get { lock (_lock) return _nodes.Count * 80L; } }

    public void Clear()
    {
        lock (_lock) _nodes.Clear();
    }
}
