// Finding a native LMDB that loads on this machine.
//
// LightningDB ships its own liblmdb.so under runtimes/linux-x64/native. That build is linked
// against glibc 2.38; Debian 12 has glibc 2.36, so dlopen fails with "GLIBC_2.38 not found"
// and every LightningDB call would die with a DllNotFoundException far from the cause.
// We install a DllImport resolver on the LightningDB assembly that tries, in order:
//
//   1. the bundled library (next to the application, then in the NuGet package layout),
//   2. the system library by soname, liblmdb.so.0 (Debian/Ubuntu package liblmdb0),
//   3. liblmdb.so (the -dev symlink).
//
// The first one that loads wins; its path and mdb_version() are recorded in Status so the
// daemon can log exactly which LMDB it runs on. If none loads, Status lists every attempt's
// dlopen error and the fix. The LMDB on-disk format of 0.9.x and of the bundled build may
// differ, so the version matters when a store written on one machine is opened on another:
// the store header records the version that created it (see StoreFormat).
//
// The resolver can be installed only once per assembly (the runtime throws on a second call),
// so installation is idempotent behind a lock and happens before the first LightningDB call
// in Store.Open.
using System.Reflection;
using System.Runtime.InteropServices;
using LightningDB;

namespace DedupFs.Store.Interop;

/// <summary>Which native LMDB was loaded, or why none could be.</summary>
public sealed record LmdbStatus(bool Loaded, string? Path, string? Version, IReadOnlyList<string> Attempts)
{
    /// <summary>One loggable line: the library and version, or every failed attempt plus the fix.</summary>
    public override string ToString() => Loaded
        ? $"LMDB loaded: {Path} ({Version})"
        : "LMDB could not be loaded; attempts: " + string.Join("; ", Attempts) +
          ". Fix: apt-get install liblmdb-dev (or liblmdb0).";
}

/// <summary>Installs the DllImport resolver for LightningDB and reports what it loaded.</summary>
public static unsafe class LmdbLoader
{
    private static readonly Lock s_gate = new();
    private static bool s_installed;
    private static LmdbStatus? s_status;
    private static IntPtr s_handle;

    /// <summary>The outcome of loading LMDB; loads it on first use.</summary>
    public static LmdbStatus Status
    {
        get
        {
            EnsureInstalled();
            lock (s_gate)
            {
                s_status ??= LoadFirstWorking();
                return s_status;
            }
        }
    }

    /// <summary>Installs the resolver (once). Call before any LightningDB type is used.</summary>
    public static void EnsureInstalled()
    {
        lock (s_gate)
        {
            if (s_installed) return;
            NativeLibrary.SetDllImportResolver(typeof(LightningEnvironment).Assembly, Resolve);
            s_installed = true;
        }
    }

    /// <summary>Throws a DllNotFoundException carrying the full explanation if no LMDB loads.</summary>
    public static void EnsureLoaded()
    {
        LmdbStatus status = Status;
        if (!status.Loaded) throw new DllNotFoundException(status.ToString());
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != "lmdb" && name != "liblmdb") return IntPtr.Zero; // not ours: default probing
        LmdbStatus status = Status;
        return status.Loaded ? s_handle : IntPtr.Zero;
    }

    private static LmdbStatus LoadFirstWorking()
    {
        var attempts = new List<string>();
        foreach (string candidate in Candidates())
        {
            try
            {
                IntPtr handle = NativeLibrary.Load(candidate);
                string version = ReadVersion(handle);
                s_handle = handle;
                return new LmdbStatus(true, ResolveLoadedPath(candidate), version, attempts);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException)
            {
                attempts.Add($"{candidate}: {e.Message.Trim()}");
            }
        }
        return new LmdbStatus(false, null, null, attempts);
    }

    private static IEnumerable<string> Candidates()
    {
        string rid = RuntimeInformation.RuntimeIdentifier.StartsWith("linux-arm64", StringComparison.Ordinal)
            ? "linux-arm64" : "linux-x64";
        string appDir = AppContext.BaseDirectory;
        string asmDir = System.IO.Path.GetDirectoryName(typeof(LightningEnvironment).Assembly.Location) ?? appDir;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string dir in new[] { appDir, asmDir })
        {
            foreach (string p in new[]
                     {
                         System.IO.Path.Combine(dir, "runtimes", rid, "native", "liblmdb.so"),
                         System.IO.Path.Combine(dir, "liblmdb.so"),
                         // NuGet package layout: lib/net10.0/LightningDB.dll -> runtimes/<rid>/native
                         System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, "..", "..", "runtimes", rid, "native", "liblmdb.so")),
                     })
            {
                if (File.Exists(p) && seen.Add(p)) yield return p;
            }
        }
        yield return "liblmdb.so.0";
        yield return "liblmdb.so";
    }

    private static string ReadVersion(IntPtr handle)
    {
        var mdbVersion = (delegate* unmanaged<int*, int*, int*, sbyte*>)NativeLibrary.GetExport(handle, "mdb_version");
        int major, minor, patch;
        sbyte* text = mdbVersion(&major, &minor, &patch);
        return text != null ? new string(text) : $"LMDB {major}.{minor}.{patch}";
    }

    // A soname such as liblmdb.so.0 says nothing about where the file is; /proc/self/maps does.
    private static string ResolveLoadedPath(string candidate)
    {
        if (candidate.Contains('/')) return candidate;
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash >= 0 && line.AsSpan(slash).Contains("liblmdb", StringComparison.Ordinal))
                    return line[slash..];
            }
        }
        catch (IOException) { }
        return candidate;
    }
}
