// The store: the only code that touches the disk.
//
// A store is a directory with a page data file (4 KiB slots) and an LMDB environment for
// metadata (layout in StoreFormat). In memory it keeps the PageTable (16 bytes per slot), the
// slot tables of the mappings in use, and the overlays of the blob tables. Every change is
// made in memory first and reaches the disk at the next commit:
//
// Group commit (Store.Commit.cs). A commit
//   1. fdatasyncs pages.dat, so every page written since the last commit is on disk;
//   2. writes every dirty metadata record (page-table chunks, mapping chunks and lengths,
//      blobs, the high-water mark) in ONE LMDB write transaction, whose commit is synchronous
//      (LMDB writes the data pages, fsyncs, then flips the meta page and fsyncs again);
//   3. then, and only then, lets slots freed since the last commit be reused.
// Step 1 before 2 means durable metadata never reaches a page that is not on disk; step 3
// after 2 means a page that durable metadata reaches is never overwritten. A crash at any
// instant therefore reopens at the last completed commit, consistent, with no checksum errors.
// Commits happen at sync points (the filesystem calls Commit for fsync, fdatasync, syncfs and
// unmount) and in the background after CommitInterval or CommitAfterPages.
//
// Concurrency: two gates (reader-writer locks), so that page writers do not wait for LMDB.
//   - the page gate is held shared by every page mutation (page allocation, refcount change,
//     slot change: EnterPageMutation, what the Pages layer uses) and exclusively by a commit
//     only while it copies the dirty page-table and slot-table chunks and takes the list of
//     freed slots: a few milliseconds even after a GiB of new pages;
//   - the metadata gate is held shared by every other mutation (blob puts, mapping deletion,
//     and any filesystem operation that spans both: EnterMutation takes both gates) and
//     exclusively by a commit for its whole length, because the blob overlays are written
//     to LMDB from where they live (BlobTable keeps one overlay generation).
// A commit therefore always sees whole operations, and writers of file data stream on
// through its fdatasync and LMDB transaction. Reads of pages and slots take no gate.
// Lock order: metadata gate -> page gate -> Pages-layer locks -> PageTable/SlotTable/BlobTable
// locks. Never enter the metadata gate while holding only the page gate.
using System.Collections.Concurrent;
using DedupFs.Store.Interop;
using LightningDB;
using Microsoft.Win32.SafeHandles;

namespace DedupFs.Store;

/// <summary>A DedupFs store directory opened for use. Thread-safe.</summary>
public sealed partial class Store : IDisposable
{
    private readonly StoreOptions _options;
    private readonly LightningEnvironment _env;
    private readonly LightningDatabase _headerDb, _pagesDb, _mapsDb, _mapLenDb;
    private readonly SafeFileHandle _pageFile;
    private readonly FileStream _lockFile;
    private const string LockFileName = "lock";
    private readonly PageTable _pages = new();
    private readonly ConcurrentDictionary<ulong, SlotTable> _tables = new();
    private readonly HashSet<ulong> _deletedMappings = [];  // guarded by _deletedLock
    private readonly Lock _deletedLock = new();
    private readonly ReaderWriterLockSlim _gate = new(LockRecursionPolicy.SupportsRecursion);       // metadata gate
    private readonly ReaderWriterLockSlim _pageGate = new(LockRecursionPolicy.SupportsRecursion);   // page gate
    private readonly Action<string> _log;
    private long _committedHighWater;
    private int _disposed;

    /// <summary>The store directory.</summary>
    public string Directory { get; }

    /// <summary>Inode attribute blobs keyed by <see cref="StoreKeys.Inode"/>.</summary>
    public BlobTable Inodes { get; }

    /// <summary>Directory entry blobs keyed by <see cref="StoreKeys.Dirent"/>.</summary>
    public BlobTable Dirents { get; }

    /// <summary>Extended attribute blobs keyed by <see cref="StoreKeys.Xattr"/>.</summary>
    public BlobTable Xattrs { get; }

    /// <summary>Filesystem-wide values (counters, settings) keyed by any bytes.</summary>
    public BlobTable Values { get; }

    /// <summary>Size of a page in bytes (4096).</summary>
    public const int PageSize = StoreFormat.PageSize;

    /// <summary>Opens (or creates) the store in <paramref name="directory"/>.</summary>
    /// <exception cref="StoreFormatException">unknown version, not a store, or damaged metadata; nothing was changed.</exception>
    public static Store Open(string directory, StoreOptions? options = null) => new(directory, options ?? new StoreOptions(), problems: null);

    internal Store(string directory, StoreOptions options, List<string>? problems)
    {
        LmdbLoader.EnsureLoaded();
        _options = options;
        _log = options.Log ?? (line => Console.Error.WriteLine(line));
        Directory = Path.GetFullPath(directory);
        string metaDir = Path.Combine(Directory, StoreFormat.MetaDirName);
        string pageFile = Path.Combine(Directory, StoreFormat.PageFileName);

        bool exists = System.IO.Directory.Exists(metaDir) && File.Exists(Path.Combine(metaDir, "data.mdb"));
        if (!exists)
        {
            if (!options.Create) throw new StoreFormatException($"{Directory}: not a DedupFs store (no {StoreFormat.MetaDirName}/data.mdb)");
            // The daemon's log (dedupfs.log) may be created before the store it describes.
            if (System.IO.Directory.Exists(Directory) && System.IO.Directory.EnumerateFileSystemEntries(Directory)
                    .Any(e => !e.EndsWith(".log", StringComparison.Ordinal)))
                throw new StoreFormatException($"{Directory}: not empty and not a DedupFs store; refusing to create one here");
            System.IO.Directory.CreateDirectory(metaDir);
        }
        else if (!File.Exists(pageFile))
        {
            throw new StoreFormatException($"{Directory}: {StoreFormat.PageFileName} is missing; the store is damaged (run fsck)");
        }

        // One opener at a time: two allocators over one pages.dat would hand out the same slot.
        // flock(LOCK_EX) through FileShare.None; released by the kernel if the process dies.
        try
        {
            _lockFile = new FileStream(Path.Combine(Directory, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new StoreException($"{Directory}: store is in use (another process or instance holds {LockFileName})", 16 /* EBUSY */, e);
        }

        _env = new LightningEnvironment(metaDir, new EnvironmentConfiguration
        {
            MapSize = options.MetadataMapSize,
            MaxDatabases = 16,
            MaxReaders = 512,
        });
        try
        {
            // NoThreadLocalStorage: read transactions are begun and ended by pool threads.
            _env.Open(EnvironmentOpenFlags.NoThreadLocalStorage | EnvironmentOpenFlags.NoReadAhead);
            if (!exists) CreateFormat();
            LightningDatabase[] dbs = OpenDatabases(exists);
            (_headerDb, _pagesDb, _mapsDb, _mapLenDb) = (dbs[0], dbs[1], dbs[2], dbs[3]);
            Inodes = new BlobTable(this, dbs[4], StoreFormat.InodesDb);
            Dirents = new BlobTable(this, dbs[5], StoreFormat.DirentsDb);
            Xattrs = new BlobTable(this, dbs[6], StoreFormat.XattrsDb);
            Values = new BlobTable(this, dbs[7], StoreFormat.KvDb);
            CheckHeader();
            LoadPageTable(problems);
        }
        catch
        {
            _env.Dispose();
            _lockFile.Dispose();
            throw;
        }

        _pageFile = File.OpenHandle(pageFile, exists ? FileMode.Open : FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        if (!exists)
        {
            // A new store's files and directories must survive a crash once Open returned.
            RandomAccess.FlushToDisk(_pageFile);
            Interop.Libc.FsyncDirectory(metaDir);
            Interop.Libc.FsyncDirectory(Directory);
            Interop.Libc.FsyncDirectory(Path.GetDirectoryName(Directory) ?? "/");
        }
        long need = _pages.HighWater * PageSize;
        long have = RandomAccess.GetLength(_pageFile);
        if (have < need)
        {
            string msg = $"{Directory}: {StoreFormat.PageFileName} is {have} bytes but the metadata reaches {need}; the store is damaged (run fsck)";
            if (problems == null)
            {
                _pageFile.Dispose();
                _env.Dispose();
                _lockFile.Dispose();
                throw new StoreFormatException(msg);
            }
            problems.Add(msg);
        }
        StartBackgroundCommit();
    }

    /// <summary>Which LMDB library is in use (path and version), for the daemon's log.</summary>
    public static LmdbStatus Lmdb => LmdbLoader.Status;

    internal void Log(string line) => _log(line);

    internal PageTable PageTable => _pages;

    internal LightningTransaction BeginRead() => _env.BeginTransaction(TransactionBeginFlags.ReadOnly);

    /// <summary>Holds both gates shared for one mutation of anything (blobs, mapping deletion, pages); a commit
    /// waits for it, and it waits for a commit's LMDB transaction.</summary>
    public MutationScope EnterMutation()
    {
        ThrowIfPoisoned();
        _gate.EnterReadLock();
        try
        {
            _pageGate.EnterReadLock();
        }
        catch
        {
            _gate.ExitReadLock();
            throw;
        }
        return new MutationScope(_gate, _pageGate);
    }

    /// <summary>Holds the page gate shared for one mutation of pages, refcounts and slot tables only; a commit
    /// waits for it only while it copies its snapshot, never during its fdatasync or LMDB transaction.
    /// Inside it, do not call <see cref="EnterMutation"/> (lock order).</summary>
    public MutationScope EnterPageMutation()
    {
        ThrowIfPoisoned();
        _pageGate.EnterReadLock();
        return new MutationScope(null, _pageGate);
    }

    /// <summary>Held shared gates; dispose to release.</summary>
    public readonly struct MutationScope : IDisposable
    {
        private readonly ReaderWriterLockSlim? _gate;
        private readonly ReaderWriterLockSlim _pageGate;

        internal MutationScope(ReaderWriterLockSlim? gate, ReaderWriterLockSlim pageGate)
        {
            _gate = gate;
            _pageGate = pageGate;
        }

        /// <summary>Releases the gates.</summary>
        public void Dispose()
        {
            _pageGate.ExitReadLock();
            _gate?.ExitReadLock();
        }
    }

    /// <summary>Commits, stops the background committer and closes the files.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        StopBackgroundCommit();
        try { if (!IsPoisoned) Commit(); }
        finally
        {
            _pageFile.Dispose();
            _env.Dispose();
            _lockFile.Dispose();
        }
    }

    /// <summary>Closes without committing: what a crash looks like to the disk (tests only).</summary>
    internal void DisposeWithoutCommit()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        StopBackgroundCommit();
        _pageFile.Dispose();
        _env.Dispose();
        _lockFile.Dispose();
    }

    private void CreateFormat()
    {
        using LightningTransaction tx = _env.BeginTransaction();
        var create = new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create };
        LightningDatabase header = tx.OpenDatabase(StoreFormat.HeaderDb, create);
        foreach (string name in new[] { StoreFormat.PagesDb, StoreFormat.MapsDb, StoreFormat.MapLenDb, StoreFormat.InodesDb,
                     StoreFormat.DirentsDb, StoreFormat.XattrsDb, StoreFormat.KvDb })
            tx.OpenDatabase(name, create);
        tx.Put(header, StoreFormat.FormatKey, BlobTable.Seal(StoreFormat.FormatKey, FormatRecord()));
        tx.Put(header, StoreFormat.HighWaterKey, BlobTable.Seal(StoreFormat.HighWaterKey, new byte[8]));
        tx.Commit().ThrowOnError();
    }

    private static byte[] FormatRecord()
    {
        string lmdb = LmdbLoader.Status.Version ?? "?";
        byte[] lmdbBytes = System.Text.Encoding.UTF8.GetBytes(lmdb);
        var rec = new byte[16 + lmdbBytes.Length];
        StoreFormat.Magic.CopyTo(rec);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(rec.AsSpan(8), StoreFormat.Version);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(rec.AsSpan(12), StoreFormat.PageSize);
        lmdbBytes.CopyTo(rec.AsSpan(16));
        return rec;
    }

    // Existing stores are opened read-only here (a read transaction committed to keep the
    // handles), so a store we then refuse is left exactly as it was.
    private LightningDatabase[] OpenDatabases(bool existing)
    {
        string[] names = [StoreFormat.HeaderDb, StoreFormat.PagesDb, StoreFormat.MapsDb, StoreFormat.MapLenDb,
            StoreFormat.InodesDb, StoreFormat.DirentsDb, StoreFormat.XattrsDb, StoreFormat.KvDb];
        using LightningTransaction tx = _env.BeginTransaction(existing ? TransactionBeginFlags.ReadOnly : TransactionBeginFlags.None);
        var dbs = new LightningDatabase[names.Length];
        for (int i = 0; i < names.Length; i++)
        {
            try
            {
                dbs[i] = tx.OpenDatabase(names[i], new DatabaseConfiguration { Flags = DatabaseOpenFlags.None });
            }
            catch (LightningException e)
            {
                throw new StoreFormatException($"{Directory}: metadata sub-database '{names[i]}' missing or unreadable ({e.Message}); not a DedupFs store of a known version, or damaged", e);
            }
        }
        tx.Commit().ThrowOnError();
        return dbs;
    }

    private void CheckHeader()
    {
        using LightningTransaction tx = BeginRead();
        var (rc, _, v) = tx.Get(_headerDb, StoreFormat.FormatKey);
        if (rc != MDBResultCode.Success) throw new StoreFormatException($"{Directory}: format header missing; not a DedupFs store, or damaged");
        if (!TryUnseal(StoreFormat.FormatKey, v.AsSpan(), out ReadOnlySpan<byte> rec) || rec.Length < 16)
            throw new StoreFormatException($"{Directory}: format header damaged (checksum mismatch)");
        if (!rec[..8].SequenceEqual(StoreFormat.Magic))
            throw new StoreFormatException($"{Directory}: bad magic in format header; not a DedupFs store");
        uint version = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(rec[8..]);
        uint pageSize = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(rec[12..]);
        if (version != StoreFormat.Version)
            throw new StoreFormatException($"{Directory}: store format version {version} is not supported by this build (supports {StoreFormat.Version}); nothing was changed");
        if (pageSize != StoreFormat.PageSize)
            throw new StoreFormatException($"{Directory}: page size {pageSize} is not supported (supports {StoreFormat.PageSize})");
    }

    private void LoadPageTable(List<string>? problems)
    {
        using LightningTransaction tx = BeginRead();
        var (rc, _, hwv) = tx.Get(_headerDb, StoreFormat.HighWaterKey);
        if (rc != MDBResultCode.Success || !TryUnseal(StoreFormat.HighWaterKey, hwv.AsSpan(), out ReadOnlySpan<byte> hw) || hw.Length != 8)
            throw new StoreFormatException($"{Directory}: high-water record missing or damaged");
        long highWater = (long)StoreFormat.ReadU64(hw);
        _pages.InitHighWater(highWater);
        _committedHighWater = highWater;
        using LightningCursor cursor = tx.CreateCursor(_pagesDb);
        var (crc, k, v) = cursor.First();
        while (crc == MDBResultCode.Success)
        {
            long chunk = (long)StoreFormat.ReadU64(k.AsSpan());
            if (!TryUnseal(k.AsSpan(), v.AsSpan(), out ReadOnlySpan<byte> payload) || payload.Length != StoreFormat.PagesPerChunk * PageRecord.Size
                || chunk * StoreFormat.PagesPerChunk >= Math.Max(highWater, 1))
            {
                string msg = $"{Directory}: page table chunk {chunk} damaged (checksum or size mismatch)";
                if (problems == null) throw new StoreFormatException(msg + "; run fsck");
                problems.Add(msg);
            }
            else
            {
                _pages.LoadChunk(chunk, payload);
            }
            (crc, k, v) = cursor.Next();
        }
        _pages.RebuildFreeList();
    }

    internal static bool TryUnseal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> stored, out ReadOnlySpan<byte> payload)
    {
        payload = default;
        if (stored.Length < 4) return false;
        ReadOnlySpan<byte> body = stored[..^4];
        uint crc = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(stored[^4..]);
        if (crc != Crc32C.Compute(key, body)) return false;
        payload = body;
        return true;
    }
}
