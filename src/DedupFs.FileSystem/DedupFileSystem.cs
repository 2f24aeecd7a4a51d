using DedupFs.Fuse.Api;
using DedupFs.Pages;

namespace DedupFs.FileSystem;

/// <summary>The DedupFs filesystem: the FUSE requests answered over a page engine and its store.</summary>
public sealed partial class DedupFileSystem : IFuseFileSystem, IDisposable
{
    public DedupFileSystem(PageEngine engine, FileSystemOptions options)
    {
        Engine = engine;
        Options = options;
    }

    public PageEngine Engine { get; }

    public FileSystemOptions Options { get; }

    /// <summary>Commits everything; the engine is the caller's to dispose.</summary>
    public void Dispose() => Engine.Sync();
}
