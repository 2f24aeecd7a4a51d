using System.Runtime.InteropServices;
using DedupFs.FileSystem;
using DedupFs.Fuse.Mounting;
using DedupFs.Fuse.Session;
using DedupFs.Pages;
using DedupFs.Store;

namespace DedupFs.Cli.Mounting;

/// <summary>
/// The daemon's life: open the store, mount, serve until unmounted (or SIGTERM/SIGINT/SIGHUP,
/// which unmount), then commit and close the store. Every step that can fail says so in one
/// line on standard error, which is the store's log when the daemon runs detached.
/// </summary>
internal static class MountDaemon
{
    public const int Ok = 0, Failed = 1;

    public static int Run(MountSettings settings, TextWriter log)
    {
        log.WriteLine($"{Stamp()} dedupfs {typeof(MountDaemon).Assembly.GetName().Version} pid {Environment.ProcessId}: mounting {settings.Store} on {settings.MountPoint} -o {settings.ToOptionString()}");
        log.WriteLine($"{Stamp()} {Store.Store.Lmdb}");
        log.Flush();

        PageEngine engine;
        try
        {
            engine = PageEngine.Open(
                settings.Store,
                new StoreOptions { CommitInterval = settings.CommitInterval, Log = line => WriteLine(log, line) },
                new PageEngineOptions { CacheBytes = settings.CacheBytes, InlineDedup = settings.InlineDedup, MergeableByDefault = settings.Mergeable });
        }
        catch (StoreException e) when (e.Errno == 16)
        {
            WriteLine(log, $"dedupfs: {settings.Store}: the store is in use by another dedupfs daemon (or fsck)");
            return Failed;
        }
        catch (StoreException e)
        {
            WriteLine(log, $"dedupfs: cannot open the store: {e.Message}");
            return Failed;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException)
        {
            WriteLine(log, $"dedupfs: cannot load LMDB: {Store.Store.Lmdb}");
            return Failed;
        }

        var fs = new DedupFileSystem(engine, new FileSystemOptions
        {
            Cache = settings.Cache,
            ReadOnly = settings.Fuse.ReadOnly,
            // A new store's root belongs to whoever mounts it, as fusermount3 users expect.
            RootUid = Posix.GetUid(),
            RootGid = Posix.GetGid(),
            MergeableByDefault = settings.Mergeable,
            Log = log,
        });

        // After the filesystem exists (it tells the engine each file's merge advice, which a
        // running scanner needs from its first batch) and before the mount is visible.
        if (ApplyKsm(settings, engine, log) is { } problem)
        {
            WriteLine(log, $"dedupfs: {problem}");
            fs.Dispose();
            engine.Dispose();
            return Failed;
        }

        FuseSession session;
        try
        {
            var sessionOptions = settings.Workers > 0
                ? new FuseSessionOptions { Workers = settings.Workers, Trace = settings.Debug }
                : new FuseSessionOptions { Trace = settings.Debug };
            session = FuseSession.Mount(fs, settings.Fuse, sessionOptions);
        }
        catch (FuseMountException e)
        {
            WriteLine(log, $"dedupfs: cannot mount {settings.MountPoint}: {e.Message}");
            fs.Dispose();
            engine.Dispose();
            return Failed;
        }

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            WriteLine(log, $"dedupfs: {context.Signal}: unmounting {settings.MountPoint}");
            try
            {
                if (!session.Unmount()) session.Unmount(lazy: true);
            }
            catch (FuseMountException)
            {
                session.Unmount(lazy: true);
            }
        }

        using (PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop))
        using (PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop))
        using (PosixSignalRegistration.Create(PosixSignal.SIGHUP, Stop))
        {
            if (!session.WaitForInit(TimeSpan.FromSeconds(60)))
            {
                WriteLine(log, "dedupfs: the kernel never sent INIT; unmounting");
                session.Unmount(lazy: true);
            }
            else
            {
                WriteLine(log, $"dedupfs: mounted {settings.MountPoint}");
            }

            session.Completion.Wait();
        }

        int status = Ok;
        try
        {
            session.Dispose();
            fs.Dispose();
            engine.Dispose();
            WriteLine(log, $"dedupfs: unmounted {settings.MountPoint}; store committed");
        }
        catch (StoreException e)
        {
            WriteLine(log, $"dedupfs: the final commit failed: {e.Message}; the store keeps its last commit");
            status = Failed;
        }

        return status;
    }

    // Tunables in the order given, run last (so a scanner starts with the others already set).
    private static string? ApplyKsm(MountSettings settings, PageEngine engine, TextWriter log)
    {
        foreach (var (name, value) in settings.Ksm.Where(t => t.Key != "run").Concat(settings.Ksm.Where(t => t.Key == "run")))
        {
            int err = engine.Scanner.Set(name, value);
            if (err != 0)
                return $"merge scanner tunable {(name == "run" ? "ksm_run" : name)}={value}: {DescribeErrno(err)}";
        }
        if (settings.Ksm.Count > 0)
            WriteLine(log, "dedupfs: merge scanner: " + string.Join(' ', settings.Ksm.Select(t => $"{t.Key}={t.Value}")));
        return null;
    }

    internal static string DescribeErrno(int err) => err switch
    {
        16 => "busy (EBUSY: pages the scanner merged are still shared; set ksm_run=2 first)",
        22 => "invalid value (EINVAL)",
        13 => "read-only (EACCES)",
        2 => "no such tunable (ENOENT)",
        _ => $"errno {err}",
    };

    private static string Stamp() => DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    private static void WriteLine(TextWriter log, string line)
    {
        lock (log)
        {
            log.WriteLine($"{Stamp()} {line}");
            log.Flush();
        }
    }
}
