using BenchmarkDotNet.Running;

namespace Broker.Benchmarks;

/// <summary>Entry point: <c>dotnet run -c Release -- --filter *Publish* --job short</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
