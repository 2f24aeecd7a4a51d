using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Api;

/// <summary>
/// What INIT negotiated. The filesystem sees it in <see cref="IFuseFileSystem.Init"/> and may turn
/// optional capabilities on (<see cref="Want"/>) among those the kernel offers (<see cref="Capable"/>).
/// </summary>
public sealed class FuseConnection
{
    public uint ProtocolMajor { get; internal set; }
    public uint ProtocolMinor { get; internal set; }

    /// <summary>Capabilities the kernel offered in INIT.</summary>
    public InitFlags Capable { get; internal set; }

    /// <summary>Capabilities to request; pre-filled with the session defaults, intersected with Capable on reply.</summary>
    public InitFlags Want { get; set; }

    public uint MaxReadahead { get; set; }
    public uint MaxWrite { get; set; }
    public ushort MaxPages { get; set; }
    public ushort MaxBackground { get; set; } = 64;
    public ushort CongestionThreshold { get; set; } = 48;
    public uint TimeGranularityNs { get; set; } = 1;
    public uint MaxStackDepth { get; set; } = 1;

    /// <summary>Sends notifications (invalidations, store, retrieve) to the kernel through the session's queue.</summary>
    public FuseNotifier Notifier { get; internal set; } = FuseNotifier.Disconnected;

    /// <summary>Backing files for FUSE passthrough (see <see cref="FuseBackingFiles"/>).</summary>
    public FuseBackingFiles BackingFiles { get; internal set; } = FuseBackingFiles.Unavailable;

    public bool Has(InitFlags flag) => (Want & flag) == flag;
}
