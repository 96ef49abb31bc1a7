// Process entry for `npm start`: serve the proxy with the environment's settings.

import { serve } from './serve.js'

await serve(process.env)
