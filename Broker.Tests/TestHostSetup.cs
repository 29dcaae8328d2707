using System.Runtime.CompilerServices;

namespace Broker.Tests;

/// <summary>
/// The test host runs many brokers (each an ActorSystem with DotNetty event loops), MQTTnet clients, Npgsql
/// connections and child processes in one process on a 2-core machine. The .NET thread pool starts with one worker
/// per core and adds threads slowly (about one per 500 ms) while some are blocked in synchronous calls, so a burst
/// of blocking work (process exits, socket disposals, ActorSystem shutdowns) could freeze every in-process broker and
/// client of the run for seconds: CI saw a 2.7 s standstill with the machine otherwise idle. A higher floor lets
/// the pool lend threads at once. The broker process itself (Broker.Node) is not affected by this setting.
/// </summary>
internal static class TestHostSetup
{
    [ModuleInitializer]
    internal static void RaiseThreadPoolFloor()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }
}
