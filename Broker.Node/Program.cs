using Broker.Node.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

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
builder.Logging.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
});
builder.Logging.SetMinimumLevel(LogLevel.Information);
builder.Services.AddSingleton(options);
builder.Services.AddHostedService<BrokerHostedService>();
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

try
{
    await builder.Build().RunAsync();
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine($"Broker failed to start: {e.GetBaseException().Message}");
    return 1;
}
