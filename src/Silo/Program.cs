using Wharf.Silo;

return await AllInOne.RunAsync(args);
