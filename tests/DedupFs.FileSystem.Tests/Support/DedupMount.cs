// A DedupFs mounted in this process over a store in a fresh temporary directory, at a fresh
// temporary mount point. Remount() stops everything (unmount, filesystem, engine) and starts
// again over the same store, as a daemon restart does. Dispose always unmounts (lazily as a
// last resort) and deletes both directories, even after a failed test.
using DedupFs.Fuse.Mounting;
using DedupFs.Fuse.Session;
using DedupFs.Pages;
using DedupFs.Store;

namespace DedupFs.FileSystem.Tests.Support;

public sealed class DedupMount : IDisposable
{
    public DedupMount(CacheMode mode, bool mergeableByDefault = true)
    {
        Mode = mode;
        MergeableByDefault = mergeableByDefault;
        StoreDir = Directory.CreateTempSubdirectory("dedupfs-fs-store-").FullName;
        MountPoint = Directory.CreateTempSubdirectory("dedupfs-fs-mnt-").FullName;
        try
        {
            Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public CacheMode Mode { get; }

    /// <summary>The mount option mergeable=on|off.</summary>
    public bool MergeableByDefault { get; }

    public string StoreDir { get; }

    public string MountPoint { get; }

    public PageEngine Engine { get; private set; } = null!;

    public DedupFileSystem Fs { get; private set; } = null!;

    public FuseSession? Session { get; private set; }

    public StringWriter Log { get; } = new();

    public string this[string relative] => Path.Combine(MountPoint, relative);

    private void Start()
    {
        Engine = PageEngine.Open(StoreDir,
            new StoreOptions { CommitInterval = TimeSpan.FromSeconds(2), MetadataMapSize = 1L << 30 },
            new PageEngineOptions { CacheBytes = 32L << 20 });
        Fs = new DedupFileSystem(Engine, new FileSystemOptions { Cache = Mode, MergeableByDefault = MergeableByDefault, Log = TextWriter.Synchronized(Log) });
        Session = FuseSession.Mount(Fs,
            new FuseMountOptions { MountPoint = MountPoint, FsName = "dedupfs-test", DefaultPermissions = true, AllowOther = true },
            new FuseSessionOptions { Workers = 4 });
        if (!Session.WaitForInit(TimeSpan.FromSeconds(20))) throw new TimeoutException("the kernel never sent INIT");
    }

    private void Stop()
    {
        try
        {
            Session?.Dispose();
        }
        finally
        {
            Session = null;
            if (MountTable.IsFuseMount(MountPoint)) FuseMounter.Unmount(MountPoint, lazy: true);
            Fs?.Dispose();
            Engine?.Dispose();
        }
    }

    /// <summary>Unmounts, closes the engine, and mounts the same store again.</summary>
    public void Remount(Action? whileStopped = null)
    {
        Stop();
        whileStopped?.Invoke();
        Start();
    }

    public void Dispose()
    {
        try
        {
            Stop();
        }
        finally
        {
            try { Directory.Delete(MountPoint); } catch (IOException) { }
            try { Directory.Delete(StoreDir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Runs a shell command as uid/gid 65534 (setpriv), with a time limit; returns (exit code, stderr).</summary>
    public static (int Exit, string Error) RunAsNobody(string command)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", command])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
        };
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(20)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"as nobody: {command} did not finish");
        }
        return (p.ExitCode, stderr.Result + stdout.Result);
    }
}
