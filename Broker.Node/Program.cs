using Broker.Node.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

if (args.Length > 0 && args[0] == "passwd")
{
    return Broker.Node.Commands.PasswdCommand.Run(args[1..], Console.In, Console.Out, Console.Error);
}

var configuration = BrokerConfiguration.Build(args);
var (options, errors) = BrokerConfiguration.Load(configuration);
if (options is null)
{
    foreach (var error in errors)
    {
        Console.Error.WriteLine($"Configuration error: {error}");
    }

    return 2;
}

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
// Console logs: one line each by default; --Logging:Console:FormatterName=json writes JSON lines whose fields
// include the named values of each message (ClientId, Address, Reason, ...). Levels: --Logging:LogLevel:Default=...
builder.Logging.SetMinimumLevel(LogLevel.Information);
builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
builder.Logging.AddConsole(); // formatters "simple" (the default here), "json" and "systemd"
builder.Services.Configure<SimpleConsoleFormatterOptions>(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
});
builder.Services.Configure<JsonConsoleFormatterOptions>(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ");
builder.Services.AddSingleton(options);
builder.Services.AddHostedService<BrokerHostedService>();
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

try
{
    await builder.Build().RunAsync();
    // 0 after a requested stop; BrokerHostedService.RemovedExitCode when the node was removed from its cluster.
    return Environment.ExitCode;
}
catch (Exception e)
{
    // A storage error already is one line naming the provider and the target; its inner exception (the driver's
    // "Connection refused", "file is not a database") alone would not say which storage was meant.
    var storage = e as Broker.Persistence.StorageUnavailableException ?? e.InnerException as Broker.Persistence.StorageUnavailableException;
    Console.Error.WriteLine($"Broker failed to start: {storage?.Message ?? e.GetBaseException().Message}");
    return 1;
}
