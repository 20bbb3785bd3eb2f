using Gateway.Server.Groups;
using Gateway.Server.Hosting;
using Gateway.Server.Records;
using Gateway.Server.Streaming;
using Gateway.Server.Topics;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = GatewayHosting.ContentRoot() });
builder.AddGatewayHosting();

var app = builder.Build();
app.UseGatewayHosting();
app.MapTopics();
app.MapRecords();
app.MapGroups();
app.MapStreaming();
app.MapPage();
app.Run();

/// <summary>The entry point, visible to integration tests.</summary>
public partial class Program;
