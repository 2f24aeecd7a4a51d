// The requests behind the control files (ControlDirectory.cs), also callable directly by a
// process that has the store open without a mount: statistics, clone of a file or a tree,
// and the list of files sharing pages with a file.
//
// Clone of a tree: under the namespace lock and one store mutation, so the copy is a
// consistent snapshot (no rename or unlink can interleave, and a commit holds all of it or
// none). Each directory's entries are listed before anything is created under the copy, so
// the copy never sees itself; a destination inside the source is refused (EINVAL). Inodes
// with several names inside the tree keep them: the first copy is remembered by source inode
// and later names link to it.
using System.Globalization;
using System.Text;
using System.Text.Json;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Pages;
using DedupFs.Store;

namespace DedupFs.FileSystem;

public sealed partial class DedupFileSystem
{
    /// <summary>The control-file statistics (names as in ControlDirectory.StatisticNames), formatted, then every
    /// merge scanner statistic and tunable by its kernel name (one key each, in that order; the keys of stats.json).
    /// logical_bytes is mapped page slots x 4 KiB (what the files would occupy without sharing; holes
    /// and all-zero pages excluded); stored_bytes is distinct pages x 4 KiB; dedup_ratio their quotient.
    /// pages_unshared has the kernel's meaning (the scanner's unstable index: pages waiting for a twin);
    /// distinct pages with one reference are unique_pages - pages_shared.</summary>
    public IReadOnlyDictionary<string, string> Statistics()
    {
        var st = Engine.Statistics;
        MergeScanner ksm = Engine.Scanner;
        long logical = (st.UniquePages + st.PagesSharing) * 4096;
        long stored = st.UniquePages * 4096;
        var inv = CultureInfo.InvariantCulture;
        ksm.TryGetStatistic("pages_unshared", out long unshared);
        var stats = new Dictionary<string, string>
        {
            ["pages_shared"] = st.PagesShared.ToString(inv),
            ["pages_sharing"] = st.PagesSharing.ToString(inv),
            ["pages_unshared"] = unshared.ToString(inv),
            ["cow_ksm"] = st.CowKsm.ToString(inv),
            ["unique_pages"] = st.UniquePages.ToString(inv),
            ["inline_dedup_hits"] = st.InlineDedupHits.ToString(inv),
            ["logical_bytes"] = logical.ToString(inv),
            ["stored_bytes"] = stored.ToString(inv),
            ["dedup_ratio"] = (stored > 0 ? (double)logical / stored : 1.0).ToString("0.000", inv),
            ["cache_bytes"] = ((long)Engine.Cache.Count * 4096).ToString(inv),
            ["cache_capacity_bytes"] = Engine.Cache.CapacityBytes.ToString(inv),
            ["cache_hits"] = Engine.Cache.Hits.ToString(inv),
            ["cache_misses"] = Engine.Cache.Misses.ToString(inv),
        };
        // pages_shared, pages_sharing and cow_ksm are the engine's counters in both lists: the first wins.
        foreach (string name in MergeScanner.StatisticNames.Concat(MergeScanner.TunableNames))
            if (!stats.ContainsKey(name) && ksm.Get(name, out string value) == 0) stats[name] = value;
        return stats;
    }

    internal ulong AddHandle(object handle) => _handles.Add(handle);

    internal T? GetHandle<T>(ulong fh) where T : class => _handles.Get<T>(fh);

    // Path components from the mount root; null for "..", which a request may not use.
    private static List<byte[]>? Components(string path)
    {
        var parts = new List<byte[]>();
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == "..") return null;
            parts.Add(Encoding.UTF8.GetBytes(part));
        }
        return parts;
    }

    // Resolves components from the root (no symlinks followed). Namespace lock held.
    private int Resolve(List<byte[]> parts, int count, out Inode? node)
    {
        node = _inodes.Get(InodeTable.FuseRoot);
        for (int i = 0; i < count; i++)
        {
            if (parts[i].Length > NameMax) return Errno.ENAMETOOLONG;
            if (!node!.IsDir) return Errno.ENOTDIR;
            node = FindChild(node.Ino, parts[i]);
            if (node == null) return Errno.ENOENT;
        }
        return Errno.Success;
    }

    /// <summary>Makes <paramref name="destination"/> a reflinked copy of <paramref name="source"/> (a file or a
    /// directory tree; paths from the mount root). Returns 0 or an errno.</summary>
    public int ClonePath(string source, string destination)
    {
        if (ReadOnly) return Errno.EROFS;
        List<byte[]>? src = Components(source), dst = Components(destination);
        if (src == null || dst == null || dst.Count == 0) return Errno.EINVAL;
        var loaded = new List<Inode>();
        try
        {
            lock (_ns)
            {
                int rc = Resolve(src, src.Count, out Inode? from);
                if (rc != 0) return rc;
                rc = Resolve(dst, dst.Count - 1, out Inode? dir);
                if (rc != 0) return rc;
                if (!dir!.IsDir) return Errno.ENOTDIR;
                byte[] name = dst[^1];
                if (name.Length > NameMax) return Errno.ENAMETOOLONG;
                if ((dir.Ino == InodeTable.FuseRoot && name.AsSpan().SequenceEqual(ControlDirectory.NameBytes)) || FindChild(dir.Ino, name) != null) return Errno.EEXIST;
                if (from!.IsDir && dst.Count > src.Count && src.Select(Convert.ToHexString).SequenceEqual(dst.Take(src.Count).Select(Convert.ToHexString)))
                    return Errno.EINVAL;
                using (Store.EnterMutation())
                {
                    Inode copy = CloneInto(from, dir, name, new Dictionary<ulong, Inode>(), loaded);
                    lock (dir.Lock)
                    {
                        if (copy.IsDir) dir.Nlink++;
                        dir.MtimeNs = dir.CtimeNs = Inode.Now();
                    }
                    _inodes.Persist(dir);
                }
                _notifier.InvalidateEntry(new NodeId(dir.Ino), name);
                _notifier.InvalidateInode(new NodeId(dir.Ino), -1, 0);
                foreach (Inode n in loaded) _inodes.MaybeRelease(n);
                return Errno.Success;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // Copies src as `name` in dir. Namespace lock and store mutation held.
    private Inode CloneInto(Inode src, Inode dir, byte[] name, Dictionary<ulong, Inode> links, List<Inode> loaded)
    {
        if (!src.IsDir && src.Nlink > 1 && links.TryGetValue(src.Ino, out Inode? linked))
        {
            Store.Dirents.Put(StoreKeys.Dirent(dir.Ino, name), Inode.DirentValue(linked.Ino, linked.Mode));
            lock (linked.Lock) linked.Nlink++;
            _inodes.Persist(linked);
            return linked;
        }
        long now = Inode.Now();
        Inode n;
        lock (src.Lock)
        {
            n = new Inode(_inodes.Allocate())
            {
                Mode = src.Mode, Uid = src.Uid, Gid = src.Gid, Rdev = src.Rdev, Flags = src.Flags, Target = src.Target,
                Nlink = src.IsDir ? 2u : 1u, Generation = 1, Parent = dir.Ino,
                AtimeNs = src.AtimeNs, MtimeNs = src.MtimeNs, CtimeNs = now, BtimeNs = now,
            };
        }
        _inodes.Add(n);
        loaded.Add(n);
        Store.Dirents.Put(StoreKeys.Dirent(dir.Ino, name), Inode.DirentValue(n.Ino, n.Mode));
        foreach (var (key, value) in Store.Xattrs.List(StoreKeys.XattrPrefix(src.Ino)))
            Store.Xattrs.Put(StoreKeys.Xattr(n.Ino, StoreKeys.NameOf(key)), value);
        // The copy's mapping was configured before it had the source's xattrs (merge advice among them).
        if (n.IsReg) ConfigureMapping(n.Mapping!);
        if (n.IsReg) Engine.CloneMapping(src.Mapping!, n.Mapping!);
        if (!src.IsDir && src.Nlink > 1) links[src.Ino] = n;
        if (n.IsDir)
        {
            foreach (var (key, value) in Store.Dirents.List(StoreKeys.DirentPrefix(src.Ino)))
            {
                Inode? child = _inodes.Get(Inode.ReadDirent(value).Child);
                if (child == null) continue;
                loaded.Add(child);
                Inode copy = CloneInto(child, n, StoreKeys.NameOf(key).ToArray(), links, loaded);
                if (copy.IsDir) n.Nlink++;
            }
        }
        _inodes.Persist(n);
        return n;
    }

    /// <summary>JSON about the regular file at <paramref name="path"/> (from the mount root): its mapped pages,
    /// how many are shared, and every other file sharing pages with it. Returns 0 or an errno.</summary>
    public int SharesOf(string path, out string json)
    {
        json = "";
        List<byte[]>? parts = Components(path);
        if (parts == null) return Errno.EINVAL;
        try
        {
            lock (_ns)
            {
                int rc = Resolve(parts, parts.Count, out Inode? n);
                if (rc != 0) return rc;
                if (!n!.IsReg) return n.IsDir ? Errno.EISDIR : Errno.EINVAL;
                var shared = new HashSet<uint>();
                long pages = 0;
                var m = n.Mapping!;
                for (long i = 0, count = m.PageCount; i < count; i++)
                {
                    PageId id = m.PageAt(i);
                    if (id.IsNone) continue;
                    pages++;
                    if (Store.RefCount(id) > 1) shared.Add(id.Value);
                }
                long sharedSlots = 0;
                for (long i = 0, count = m.PageCount; i < count; i++)
                    if (shared.Contains(m.PageAt(i).Value)) sharedSlots++;

                var others = new Dictionary<ulong, long>();
                if (shared.Count > 0)
                {
                    foreach (ulong ino in Store.MappingInodes())
                    {
                        if (ino == n.Ino || ControlDirectory.Owns(ino)) continue;
                        bool live = _inodes.TryGetLive(ino) != null;
                        // An inode being freed (its record already gone) is no file any more: opening
                        // its mapping again would reload what the free just released.
                        if (!live && !Store.Inodes.TryGet(StoreKeys.Inode(ino), out _)) continue;
                        var om = _inodes.TryGetLive(ino)?.Mapping ?? Engine.OpenMapping(ino);
                        long hits = 0;
                        for (long i = 0, count = om.PageCount; i < count; i++)
                            if (shared.Contains(om.PageAt(i).Value)) hits++;
                        if (hits > 0) others[ino] = hits;
                        if (!live) Engine.CloseMapping(ino);
                    }
                }
                var paths = PathsOf(others.Keys.ToHashSet());
                using var stream = new MemoryStream();
                using (var w = new Utf8JsonWriter(stream))
                {
                    w.WriteStartObject();
                    w.WriteString("path", string.Join('/', parts.Select(p => Encoding.UTF8.GetString(p))));
                    w.WriteNumber("pages", pages);
                    w.WriteNumber("shared_pages", sharedSlots);
                    // The file's ksm_stat [/proc/PID/ksm_stat]: its advice and what merging saved.
                    MappingMergeStatistics ms = Engine.Scanner.MappingStatistics(m);
                    w.WriteBoolean("mergeable", m.Mergeable);
                    w.WriteNumber("merge_tracked_slots", ms.MergeableSlots);
                    w.WriteNumber("merged_slots", ms.MergedSlots);
                    w.WriteNumber("ksm_zero_pages", ms.ZeroPages);
                    w.WriteNumber("profit", ms.Profit);
                    w.WriteStartArray("sharing");
                    foreach (var (ino, hits) in others.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key))
                    {
                        w.WriteStartObject();
                        w.WriteString("path", paths.TryGetValue(ino, out string? p) ? p : null);
                        w.WriteNumber("inode", ino);
                        w.WriteNumber("pages", hits);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                json = Encoding.UTF8.GetString(stream.ToArray()) + "\n";
                return Errno.Success;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // One path per wanted inode, by a breadth-first walk of the tree (stops when all are found). Namespace lock held.
    private Dictionary<ulong, string> PathsOf(HashSet<ulong> wanted)
    {
        var found = new Dictionary<ulong, string>();
        var queue = new Queue<(ulong Ino, string Path)>();
        queue.Enqueue((InodeTable.FuseRoot, ""));
        while (queue.Count > 0 && found.Count < wanted.Count)
        {
            var (dir, prefix) = queue.Dequeue();
            foreach (var (key, value) in Store.Dirents.List(StoreKeys.DirentPrefix(dir)))
            {
                var (child, type) = Inode.ReadDirent(value);
                string path = prefix + Encoding.UTF8.GetString(StoreKeys.NameOf(key));
                if (wanted.Contains(child)) found.TryAdd(child, path);
                if (type == Inode.Dir) queue.Enqueue((child, path + "/"));
            }
        }
        return found;
    }
}
