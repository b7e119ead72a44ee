"""An uploaded image from the request to the disk: reading it from a multipart form (`form`), checking
it and making its small pictures (`images`), and storing the latest ones off the request path: a
bounded queue per worker (`queue`) feeding a writer process (`writer`) that writes them into the
database the page lists them from (`store`; `legacy_files` moves in what older versions kept as
files)."""
