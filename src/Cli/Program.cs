using Wharf.Cli;

return await WharfCli.RunAsync(args);
