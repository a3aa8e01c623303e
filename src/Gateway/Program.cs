using Wharf.Gateway;

return await GatewayHost.RunAsync(args);
