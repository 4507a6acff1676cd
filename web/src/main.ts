import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { initTheme } from './theme'
import { loadMe } from './auth'
import 'uplot/dist/uPlot.min.css'
import './style.css'

initTheme()
void loadMe()
createApp(App).use(router).mount('#app')
