namespace Broker.Tests.Durability;

/// <summary>
/// The broker node processes a spec starts, one after the other, on one data directory (a node killed with -9, then
/// started again on what it left): each is ended when the spec is disposed, and the directory removed.
/// </summary>
public sealed class NodeProcesses(string prefix) : IDisposable
{
    private readonly List<BrokerNodeProcess> _nodes = new();

    public string DataDir { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    public async Task<BrokerNodeProcess> StartAsync(params string[] args)
    {
        var node = await BrokerNodeProcess.StartAsync(args);
        _nodes.Add(node);
        return node;
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }

        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
